// `/jobs/{job}`: the job's tasks (live), what `drover diff` would change
// now (printed by the CLI's own renderer), its history and kept
// generations, its images, and its lock.

import { ansi, append, clear, h, path, setText } from "./dom";
import { bytes, when } from "./format";
import { live, type LockInfo, type TaskStatus } from "./live";
import { header, TaskRows } from "./tasks";

interface Generation {
  host: string;
  /** null for a release run: it belongs to the job, not to a task */
  task: number | null;
  container: string;
  image: string;
  spec: string;
  deployed_at: string;
  deployed_by: string;
  command: string;
  state: string;
  current: boolean;
  kind: "current" | "kept" | "failed" | "release";
  /** why a failed generation failed; how a release run ended */
  outcome: string | null;
}

interface JobAnswer {
  env: string;
  job: {
    name: string;
    file: string;
    image: string;
    hosts: string[];
    instances: number;
    command: string[] | null;
    ports: number[];
    memory: number | null;
    profile: string | null;
    health: boolean;
    parallel: number;
    keep: number;
  } | null;
  diff: { text: string; empty: boolean } | null;
  diff_error: string | null;
  history: Generation[];
  locks: LockInfo[];
  unreachable: { host: string; address: string; error: string }[];
}

interface ImageRow {
  tag: string;
  reference: string;
  created: string | null;
  in_registry: boolean;
  hosts: string[];
  running: string[];
  in_spec: boolean;
  error: string | null;
}

async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url, { headers: { accept: "application/json" } });
  const body = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) throw new Error(body.error ?? `${r.status}`);
  return body as T;
}

export function jobPage(root: HTMLElement, job: string): void {
  const title = h("h1", null, h("span", { class: "dim" }, "job "), job);
  const facts = h("div", { class: "facts" });
  const lock = h("div", { class: "banner warn", hidden: true });
  const tasksTable = h("table", { class: "tasks grid" }, header(false));
  const tbody = h("tbody");
  tasksTable.append(tbody);
  const diff = h("pre", { class: "diff" }, "reading what runs…");
  const refresh = h("button", { type: "button", title: "compute the diff again (r)" }, "refresh");
  const historyBody = h("tbody");
  const images = h("div", null, h("p", { class: "dim" }, "reading the registry and the hosts…"));
  root.append(
    h("div", { class: "page-head" }, title, facts),
    lock,
    h("h2", null, "tasks"),
    tasksTable,
    h("h2", null, "what ", h("code", null, `drover diff ${job}`), " would change ", refresh),
    diff,
    h("h2", null, "history and kept generations"),
    h("table", { class: "grid" }, h("thead", null, h("tr", null, ...["task", "deployed", "by", "image", "spec", "command", "state"].map((c) => h("th", null, c)))), historyBody),
    h("h2", null, "images"),
    images,
  );
  document.title = `${job} · drover`;

  let specImage: string | undefined;
  const rows = new TaskRows(tbody, () => specImage);
  const feed = live();
  feed.on((o) => {
    const j = o.jobs.find((x) => x.name === job);
    specImage = j?.image;
    rows.update(o.tasks.filter((t: TaskStatus) => t.job === job));
    showLocks(lock, j?.locks ?? []);
  });
  setInterval(() => rows.tick(feed.skew), 1000);

  const load = async () => {
    refresh.disabled = true;
    diff.classList.add("loading");
    try {
      const a = await getJson<JobAnswer>(`/api${path("jobs", job)}`);
      renderFacts(facts, a);
      clear(diff);
      if (a.diff_error) diff.append(h("span", { class: "a-fg1" }, a.diff_error));
      else if (a.diff && a.diff.empty) diff.append(h("span", { class: "a-fg2" }, "no changes: what runs is what the files say"), "\n", ansi(a.diff.text));
      else if (a.diff) diff.append(ansi(a.diff.text));
      for (const u of a.unreachable) diff.append("\n", h("span", { class: "a-fg1" }, `host ${u.host} (${u.address}) is unreachable: ${u.error}`));
      renderHistory(historyBody, a.history);
      if (a.locks.length) showLocks(lock, a.locks);
    } catch (e) {
      clear(diff);
      diff.append(h("span", { class: "a-fg1" }, String((e as Error).message)));
    } finally {
      refresh.disabled = false;
      diff.classList.remove("loading");
    }
  };
  refresh.addEventListener("click", load);
  document.addEventListener("keydown", (e) => {
    if (e.key === "r" && !isTyping(e)) load();
  });
  load();
  getJson<{ repository: string; rows: ImageRow[]; registry_error: string | null }>(`/api${path("jobs", job, "images")}`)
    .then((r) => renderImages(images, r.repository, r.rows, r.registry_error))
    .catch((e) => {
      clear(images);
      images.append(h("p", { class: "bad" }, String((e as Error).message)));
    });
}

export function isTyping(e: KeyboardEvent): boolean {
  const t = e.target as HTMLElement | null;
  return !!t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable || !!t.closest(".xterm"));
}

function showLocks(el: HTMLElement, locks: LockInfo[]) {
  el.hidden = locks.length === 0;
  const l = locks[0];
  setText(el, l ? `locked on ${locks.map((x) => x.host).join(", ")} by ${l.by} since ${when(l.at)}${l.reason ? `: ${l.reason}` : ""}${l.command ? ` (${l.command})` : ""}` : "");
}

function renderFacts(el: HTMLElement, a: JobAnswer) {
  clear(el);
  const j = a.job;
  if (!j) {
    el.append(h("span", { class: "bad" }, "not in the spec"));
    return;
  }
  const fact = (k: string, v: string) => h("span", { class: "fact" }, h("span", { class: "dim" }, k + " "), v);
  append(el, [
    fact("image", j.image),
    fact("hosts", `${j.hosts.join(", ")} × ${j.instances}`),
    j.command ? fact("command", j.command.join(" ")) : null,
    j.ports.length ? fact("ports", j.ports.join(", ")) : null,
    j.memory ? fact("memory", bytes(j.memory)) : null,
    j.profile ? fact("profile", j.profile) : null,
    fact("rollout", `${j.parallel} at a time${j.health ? ", health-gated" : ""}, keeps ${j.keep}`),
    fact("file", j.file),
  ]);
}

function stateText(g: Generation): string {
  switch (g.kind) {
    case "current":
      return `current, ${g.state}`;
    case "failed":
      return `failed its gate: ${g.outcome ?? ""}`;
    case "release":
      return `release: ${g.outcome ?? ""}`;
    default:
      return "kept";
  }
}

function renderHistory(body: HTMLTableSectionElement, gens: Generation[]) {
  clear(body);
  if (gens.length === 0) {
    body.append(h("tr", null, h("td", { colspan: "7", class: "dim" }, "no deployed generation on the hosts")));
    return;
  }
  for (const g of gens) {
    body.append(
      h(
        "tr",
        { class: g.current ? "" : "kept" },
        h("td", { class: "mono" }, g.task === null ? `${g.host} release` : `${g.host}/${g.task}`),
        h("td", { title: g.deployed_at }, when(g.deployed_at)),
        h("td", null, g.deployed_by),
        h("td", { class: "mono" }, g.image),
        h("td", { class: "mono dim" }, g.spec.slice(0, 12)),
        h("td", { class: "dim" }, g.command),
        h("td", null, h("span", { class: "pill " + (g.current ? (g.state === "running" ? "st-ok" : "st-bad") : g.kind === "failed" ? "st-bad" : "st-idle") }, stateText(g))),
      ),
    );
  }
}

function renderImages(el: HTMLElement, repository: string, rows: ImageRow[], registryError: string | null) {
  clear(el);
  el.append(h("p", { class: "dim" }, "repository ", h("span", { class: "mono" }, repository)));
  if (registryError) el.append(h("p", { class: "warn" }, registryError));
  const body = h("tbody");
  for (const r of rows) {
    body.append(
      h(
        "tr",
        { class: r.in_spec ? "spec" : "" },
        h("td", { class: "mono" }, r.tag, r.in_spec ? h("span", { class: "tag" }, "spec") : null),
        h("td", { title: r.created ?? "" }, when(r.created)),
        h("td", null, r.in_registry ? "yes" : "–"),
        h("td", null, r.hosts.join(", ") || "–"),
        h("td", { class: "mono" }, r.running.join(", ") || "–"),
        h("td", { class: "dim" }, r.error ?? ""),
      ),
    );
  }
  if (rows.length === 0) body.append(h("tr", null, h("td", { colspan: "6", class: "dim" }, "no tags found")));
  el.append(h("table", { class: "grid" }, h("thead", null, h("tr", null, ...["tag", "built", "registry", "on hosts", "running in", ""].map((c) => h("th", null, c)))), body));
}
