// `/`: every host and every job with its tasks, live.

import { append, clear, h, path, setText } from "./dom";
import { count, when } from "./format";
import { channel, onOverview, type Glance, type HostView, type JobView, type Overview, type TaskStatus } from "./channel";
import { header, TaskRows, troubled } from "./tasks";

interface JobBlock {
  body: HTMLTableSectionElement;
  name: HTMLAnchorElement;
  image: HTMLSpanElement;
  counts: HTMLSpanElement;
  sync: HTMLAnchorElement;
  stopped: HTMLSpanElement;
  lock: HTMLSpanElement;
  rows: TaskRows;
}

/** `in sync`, `3 changes`, …: the job's `diff` count at a glance. */
export function syncText(g: Glance | undefined): string {
  if (!g) return "";
  if (g.error) return "diff unknown";
  if (g.changes === null) return "checking";
  if (g.changes === 0) return g.unreachable.length ? "in sync where read" : "in sync";
  return g.changes === 1 ? "1 change" : `${g.changes} changes`;
}

export function syncClass(g: Glance | undefined): string {
  if (!g || g.changes === null || g.error) return "sync sync-unknown";
  return g.changes === 0 ? "sync sync-ok" : "sync sync-drift";
}

export function syncTitle(g: Glance | undefined): string {
  if (!g) return "";
  if (g.error) return `the files cannot be compared with what runs: ${g.error}`;
  const parts: string[] = [];
  if (g.changes === 0) parts.push("what runs is what the files say (drover diff lists nothing)");
  else if (g.changes !== null) parts.push(`drover diff lists ${g.changes} change(s)${g.held ? `, ${g.held} held by drover stop` : ""}: open the job to see them`);
  if (g.unreachable.length) parts.push(`host(s) ${g.unreachable.join(", ")} could not be read`);
  return parts.join("; ");
}

export function overview(root: HTMLElement): void {
  const summary = h("div", { class: "summary" });
  const specError = h("div", { class: "banner bad", hidden: true });
  const hosts = h("div", { class: "hosts" });
  const filter = h("input", {
    type: "search",
    class: "filter",
    placeholder: "filter jobs, hosts, states, images  ( / )",
    "aria-label": "filter",
    spellcheck: "false",
  });
  const onlyTrouble = h("input", { type: "checkbox", id: "trouble" });
  const table = h("table", { class: "tasks grid" }, header(false));
  const empty = h("p", { class: "empty", hidden: true }, "no job matches the filter");
  root.append(
    h("section", { class: "bar-top" }, summary, h("div", { class: "tools" }, filter, h("label", { class: "check" }, onlyTrouble, " needs a look"))),
    specError,
    h("h2", null, "hosts"),
    hosts,
    h("h2", null, "jobs"),
    table,
    empty,
  );
  filter.value = new URLSearchParams(location.search).get("q") ?? "";

  const blocks = new Map<string, JobBlock>();
  const hostCards = new Map<string, HTMLElement>();
  let specImages = new Map<string, string>();
  const specImage = (job: string) => specImages.get(job);

  const render = (o: Overview) => {
    specImages = new Map(o.jobs.map((j) => [j.name, j.image]));
    renderSummary(summary, o);
    specError.hidden = !o.spec_error;
    setText(specError, o.spec_error ? `the files do not load (showing the last good ones): ${o.spec_error}` : "");
    renderHosts(hosts, hostCards, o.hosts);

    const q = filter.value.trim().toLowerCase();
    const byJob = new Map<string, TaskStatus[]>();
    for (const t of o.tasks) {
      if (!byJob.has(t.job)) byJob.set(t.job, []);
      byJob.get(t.job)!.push(t);
    }
    const jobs = new Map<string, JobView | undefined>(o.jobs.map((j) => [j.name, j]));
    for (const name of byJob.keys()) if (!jobs.has(name)) jobs.set(name, undefined);
    const names = [...jobs.keys()].sort();
    let shown = 0;
    let prev: HTMLTableSectionElement | null = null;
    for (const name of names) {
      const job = jobs.get(name);
      const tasks = byJob.get(name) ?? [];
      const matches = (t: TaskStatus) =>
        (!onlyTrouble.checked || troubled(t)) &&
        (!q || [t.job, t.host, `${t.host}/${t.task}`, t.state, t.health ?? "", t.image ?? "", t.container ?? ""].some((s) => s.toLowerCase().includes(q)));
      const visible = tasks.filter(matches);
      const jobMatches = !q || name.toLowerCase().includes(q) || (job?.image ?? "").toLowerCase().includes(q);
      const rows = jobMatches && !onlyTrouble.checked ? tasks : visible;
      let block = blocks.get(name);
      if (!block) {
        block = makeBlock(name, specImage);
        blocks.set(name, block);
      }
      const show = rows.length > 0 || (jobMatches && !onlyTrouble.checked);
      block.body.hidden = !show;
      if (show) shown++;
      fillBlock(block, job, tasks);
      block.rows.update(rows);
      const want: ChildNode | null = prev ? prev.nextSibling : table.tHead!.nextSibling;
      if (want !== block.body) table.insertBefore(block.body, want);
      prev = block.body;
    }
    for (const [name, block] of blocks) {
      if (!jobs.has(name)) {
        block.body.remove();
        blocks.delete(name);
      }
    }
    empty.hidden = shown > 0 || names.length === 0;
    if (names.length === 0 && !table.querySelector(".none")) {
      table.append(h("tbody", { class: "none" }, h("tr", null, h("td", { colspan: "10" }, "no jobs in jobs/ yet"))));
    }
  };

  let last: Overview | null = null;
  onOverview((o) => {
    last = o;
    render(o);
  });
  const rerender = () => {
    if (last) render(last);
    const url = new URL(location.href);
    if (filter.value) url.searchParams.set("q", filter.value);
    else url.searchParams.delete("q");
    history.replaceState(null, "", url);
  };
  filter.addEventListener("input", rerender);
  onlyTrouble.addEventListener("change", rerender);
  setInterval(() => {
    for (const b of blocks.values()) b.rows.tick(channel().skew);
  }, 1000);
}

function renderSummary(el: HTMLElement, o: Overview) {
  const running = o.tasks.filter((t) => t.state === "running").length;
  const trouble = o.tasks.filter(troubled).length;
  const up = o.hosts.filter((x) => x.state === "up").length;
  const drifting = o.jobs.filter((j) => (j.glance.changes ?? 0) > 0).length;
  clear(el);
  el.append(
    h("span", { class: "stat" }, h("b", null, count(o.jobs.length)), " jobs"),
    h("span", { class: "stat" + (drifting ? " warn" : "") }, h("b", null, count(drifting)), " with changes"),
    h("span", { class: "stat" }, h("b", null, `${count(running)}/${count(o.tasks.length)}`), " tasks running"),
    h("span", { class: "stat" + (up < o.hosts.length ? " bad" : "") }, h("b", null, `${up}/${o.hosts.length}`), " hosts up"),
    h("span", { class: "stat" + (trouble ? " warn" : "") }, h("b", null, count(trouble)), " need a look"),
  );
}

function renderHosts(el: HTMLElement, cards: Map<string, HTMLElement>, hosts: HostView[]) {
  const seen = new Set<string>();
  for (const x of hosts) {
    seen.add(x.name);
    let card = cards.get(x.name);
    if (!card) {
      card = h("div", { class: "host" });
      cards.set(x.name, card);
      el.append(card);
    }
    clear(card);
    card.className = `host hs-${x.state}`;
    card.title = x.error ? `${x.address}: ${x.error}` : x.address;
    append(card, [
      h("div", { class: "host-name" }, h("span", { class: "dot" }), x.name),
      h(
        "div",
        { class: "host-meta" },
        x.state === "up" ? `${x.running}/${x.containers} running` : x.state,
        x.version ? ` · docker ${x.version}` : "",
      ),
      h("div", { class: "host-addr mono dim" }, x.address),
      x.error ? h("div", { class: "host-err" }, x.error, x.state !== "up" ? ` (since ${when(x.since)})` : "") : null,
    ]);
  }
  for (const [name, card] of cards) {
    if (!seen.has(name)) {
      card.remove();
      cards.delete(name);
    }
  }
}

function makeBlock(name: string, specImage: (job: string) => string | undefined): JobBlock {
  const link = h("a", { href: path("jobs", name), class: "job-name" }, name);
  const image = h("span", { class: "mono dim job-image" });
  const counts = h("span", { class: "job-counts" });
  const sync = h("a", { href: path("jobs", name), class: "sync" });
  const stopped = h("span", { class: "chip chip-idle", hidden: true }, "stopped");
  const lock = h("span", { class: "lock", hidden: true });
  const head = h("tr", { class: "job-head" }, h("td", { colspan: "10" }, h("span", { class: "job-line" }, link, counts, sync, stopped, lock), image));
  const body = h("tbody", { class: "job" }, head);
  return { body, name: link, image, counts, sync, stopped, lock, rows: new TaskRows(body, specImage, head) };
}

function fillBlock(block: JobBlock, job: JobView | undefined, tasks: TaskStatus[]) {
  const running = tasks.filter((t) => t.state === "running").length;
  setText(block.counts, `${running}/${tasks.length} running`);
  block.counts.className = "job-counts " + (running === tasks.length && tasks.length > 0 ? "ok" : tasks.some(troubled) ? "bad" : "");
  setText(block.image, job && job.in_spec ? job.image : "not in the spec: drover up removes it");
  const g = job?.glance;
  setText(block.sync, syncText(g));
  block.sync.className = syncClass(g);
  block.sync.title = syncTitle(g);
  block.sync.hidden = !g;
  const marks = g?.stop_marks ?? [];
  block.stopped.hidden = marks.length === 0;
  block.stopped.title = marks.map((m) => `stopped by drover stop on ${m.host}${m.by ? ` (${m.by})` : ""}`).join("; ");
  const lock = job?.locks[0];
  block.lock.hidden = !lock;
  setText(block.lock, lock ? `locked by ${lock.by}${lock.reason ? `: ${lock.reason}` : lock.command ? ` (${lock.command})` : ""}` : "");
}
