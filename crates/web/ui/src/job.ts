// `/jobs/{job}`: the job's tasks and glance (live), the actions an
// operator takes from here (each shown as a plan first, confirmed, then
// run by the server through the CLI's own fleet code, its progress
// streamed to every page watching the job), what the engines saw happen to
// it lately (a change made from the CLI shows here too), what `drover diff`
// would change now (printed by the CLI's own renderer), its timeline of
// generations, its images, and its lock.

import { channel, type Glance, type JobView, type LockInfo, type Message, type TaskStatus } from "./channel";
import { ansi, append, clear, getJson, h, operator, path, setText } from "./dom";
import { bytes, clock, parseTime, when } from "./format";
import { syncClass, syncText, syncTitle } from "./overview";
import { header, TaskRows } from "./tasks";

interface TimelineEntry {
  at: string;
  kind: "deployed" | "kept" | "rolled back" | "failed" | "release";
  by: string;
  command: string;
  image: string;
  tasks: string[];
  why: string | null;
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
  diff: { text: string; ansi: string; empty: boolean } | null;
  diff_error: string | null;
  timeline: TimelineEntry[];
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

interface PlanAnswer {
  job: string;
  action: string;
  command: string;
  question: string;
  text: string;
  ansi: string;
  summary: string;
  problems: string[];
  warnings: string[];
  noop: boolean;
  fingerprint: string;
  locked: string | null;
  running: { change: string; action: string } | null;
}

interface Activity {
  time: string;
  host: string;
  task: number | null;
  action: string;
  name: string;
  exit_code: number | null;
  what: "task" | "lock" | "stopped";
}

const ACTIONS: [string, string][] = [
  ["restart", "restart every task in place, batch by batch, gated on health"],
  ["stop", "stop every task and keep it stopped (through up) until start"],
  ["start", "clear the stop mark and converge the job to the files"],
  ["rollback", "return the job to its previous deployed generation"],
  ["up", "converge this job to the files (what the diff below shows)"],
];

export function jobPage(root: HTMLElement, job: string): void {
  const title = h("h1", null, h("span", { class: "dim" }, "job "), job);
  const sync = h("a", { class: "sync", href: "#diff" });
  const stopped = h("span", { class: "chip chip-idle", hidden: true }, "stopped");
  const facts = h("div", { class: "facts" });
  const lock = h("div", { class: "banner warn", hidden: true });
  const actions = h("div", { class: "actions" });
  const changes = h("div", { class: "changes" });
  const tasksTable = h("table", { class: "tasks grid" }, header(false));
  const tbody = h("tbody");
  tasksTable.append(tbody);
  const activity = h("ol", { class: "activity" });
  const diff = h("pre", { class: "diff", id: "diff" }, "reading what runs…");
  const refresh = h("button", { type: "button", title: "compute the diff again (r)" }, "refresh");
  const timeline = h("ol", { class: "timeline" });
  const images = h("div", null, h("p", { class: "dim" }, "reading the registry and the hosts…"));
  root.append(
    h("div", { class: "page-head" }, h("div", { class: "title-line" }, title, sync, stopped), facts),
    lock,
    actions,
    changes,
    h("h2", null, "tasks"),
    tasksTable,
    h("h2", null, "what ", h("code", null, `drover diff ${job}`), " would change ", refresh),
    diff,
    h("h2", null, "what the engines saw lately"),
    activity,
    h("h2", null, "timeline"),
    timeline,
    h("h2", null, "images"),
    images,
  );
  document.title = `${job} · drover`;
  if (operator()) {
    for (const [action, help] of ACTIONS) {
      const b = h("button", { type: "button", class: "action", "data-action": action, title: help }, action);
      b.addEventListener("click", () => askPlan(job, action, changes));
      actions.append(b);
    }
  } else {
    actions.append(h("span", { class: "dim" }, "signed in as a viewer: actions need the operator's token"));
  }

  let specImage: string | undefined;
  const rows = new TaskRows(tbody, () => specImage);
  const panels = new Map<string, ChangePanel>();
  let reload = 0;
  const later = () => {
    clearTimeout(reload);
    reload = window.setTimeout(load, 1500);
  };
  let lastActivity = "";
  channel().subscribe({ topic: "job", job }, (m: Message) => {
    if (m.t === "error") {
      clear(diff);
      diff.append(h("span", { class: "a-fg1" }, m.error));
      return;
    }
    if (m.t === "change") {
      let panel = panels.get(m.change);
      if (!panel) {
        panel = new ChangePanel(m.change);
        panels.set(m.change, panel);
        changes.prepend(panel.el);
      }
      panel.line(m);
      if (m.kind === "finished") later();
      return;
    }
    if (m.t !== "job") return;
    const j = m.job as JobView | null;
    specImage = j?.in_spec ? j.image : undefined;
    rows.update(m.tasks as TaskStatus[]);
    showLocks(lock, j?.locks ?? []);
    showGlance(sync, stopped, j?.glance);
    const acts = m.activity as Activity[];
    const key = acts.length ? acts[acts.length - 1].time + acts.length : "";
    if (key !== lastActivity) {
      if (lastActivity) later();
      lastActivity = key;
      renderActivity(activity, acts);
    }
  });
  setInterval(() => rows.tick(channel().skew), 1000);

  const load = async () => {
    refresh.disabled = true;
    diff.classList.add("loading");
    try {
      const a = await getJson<JobAnswer>(`/api${path("jobs", job)}`);
      renderFacts(facts, a);
      clear(diff);
      if (a.diff_error) diff.append(h("span", { class: "a-fg1" }, a.diff_error));
      else if (a.diff && a.diff.empty) diff.append(h("span", { class: "a-fg2" }, "no changes: what runs is what the files say"), "\n", ansi(a.diff.ansi));
      else if (a.diff) diff.append(ansi(a.diff.ansi));
      for (const u of a.unreachable) diff.append("\n", h("span", { class: "a-fg1" }, `host ${u.host} (${u.address}) is unreachable: ${u.error}`));
      renderTimeline(timeline, a.timeline);
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

function showGlance(sync: HTMLAnchorElement, stopped: HTMLElement, g: Glance | undefined) {
  setText(sync, syncText(g));
  sync.className = syncClass(g);
  sync.title = syncTitle(g);
  sync.hidden = !g;
  const marks = g?.stop_marks ?? [];
  stopped.hidden = marks.length === 0;
  stopped.title = marks.map((m) => `stopped by drover stop on ${m.host}${m.by ? ` (${m.by})` : ""}`).join("; ");
}

function showLocks(el: HTMLElement, locks: LockInfo[]) {
  el.hidden = locks.length === 0;
  const l = locks[0];
  setText(el, l ? `locked on ${locks.map((x) => x.host).join(", ")} by ${l.by} since ${when(l.at)}${l.reason ? `: ${l.reason}` : ""}${l.command ? ` (${l.command})` : ""}` : "");
}

/** The plan of an action, shown and confirmed before it runs. */
async function askPlan(job: string, action: string, changes: HTMLElement): Promise<void> {
  const dialog = h("div", { class: "dialog", role: "dialog", "aria-label": `${action} ${job}` });
  const box = h("div", { class: "dialog-box" });
  dialog.append(box);
  document.body.append(dialog);
  const close = () => dialog.remove();
  dialog.addEventListener("click", (e) => {
    if (e.target === dialog) close();
  });
  const onKey = (e: KeyboardEvent) => {
    if (e.key === "Escape") {
      close();
      document.removeEventListener("keydown", onKey);
    }
  };
  document.addEventListener("keydown", onKey);
  box.append(h("h2", null, `drover ${action} ${job}`), h("p", { class: "dim" }, "planning…"));
  let plan: PlanAnswer;
  try {
    plan = await getJson<PlanAnswer>(`/api${path("jobs", job, action, "plan")}`);
  } catch (e) {
    clear(box);
    box.append(h("h2", null, `drover ${action} ${job}`), h("div", { class: "banner bad" }, (e as Error).message), buttons(box, close, null));
    return;
  }
  const show = (p: PlanAnswer, note: string | null) => {
    clear(box);
    box.append(h("h2", null, p.command));
    if (note) box.append(h("div", { class: "banner warn" }, note));
    for (const w of p.warnings) box.append(h("div", { class: "banner warn" }, `warning: ${w}`));
    const text = p.text.trim() ? ansi(p.ansi) : document.createTextNode(p.noop ? "nothing to do: the job is as the files say" : "");
    box.append(h("pre", { class: "diff plan" }, text));
    for (const problem of p.problems) box.append(h("div", { class: "banner warn" }, problem));
    if (p.locked) box.append(h("div", { class: "banner bad locked" }, p.locked));
    if (p.running) box.append(h("div", { class: "banner warn" }, `a ${p.running.action} of this job started from the dashboard is still running (${p.running.change})`));
    if (p.noop || p.locked || p.running) {
      box.append(buttons(box, close, null));
      return;
    }
    box.append(h("p", { class: "question" }, p.question));
    const confirm = async (b: HTMLButtonElement) => {
      b.disabled = true;
      setText(b, "starting…");
      try {
        const r = await fetch(`/api${path("jobs", job, action)}`, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json" },
          body: JSON.stringify({ fingerprint: p.fingerprint }),
        });
        const body = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
        if (r.status === 202) {
          close();
          changes.scrollIntoView({ block: "nearest" });
          return;
        }
        if (r.status === 409 && body.plan) {
          show(body.plan as PlanAnswer, body.error);
          return;
        }
        box.append(h("div", { class: "banner bad" }, body.error ?? body.message ?? `${r.status}`));
        if (body.noop) close();
      } catch (e) {
        box.append(h("div", { class: "banner bad" }, (e as Error).message));
      }
    };
    box.append(buttons(box, close, [`yes, ${action}`, confirm]));
  };
  show(plan, null);
}

function buttons(_box: HTMLElement, close: () => void, yes: [string, (b: HTMLButtonElement) => void] | null): HTMLElement {
  const row = h("div", { class: "dialog-buttons" });
  const no = h("button", { type: "button", class: "cancel" }, yes ? "cancel" : "close");
  no.addEventListener("click", close);
  row.append(no);
  if (yes) {
    const b = h("button", { type: "button", class: "confirm" }, yes[0]);
    b.addEventListener("click", () => yes[1](b));
    row.append(b);
    setTimeout(() => b.focus(), 0);
  }
  return row;
}

/** One change's progress: a row per task with its latest step, the notices, the end. */
class ChangePanel {
  el: HTMLElement;
  private head: HTMLElement;
  private state: HTMLElement;
  private body = h("tbody");
  private notes = h("div", { class: "change-notes" });
  private result = h("div", { class: "change-result", hidden: true });
  private rows = new Map<string, { tr: HTMLTableRowElement; step: HTMLElement; time: HTMLElement }>();

  constructor(readonly id: string) {
    this.head = h("span", { class: "change-title" }, id);
    this.state = h("span", { class: "pill st-warn" }, "running");
    this.el = h(
      "section",
      { class: "change", "data-change": id },
      h("div", { class: "change-head" }, this.head, this.state),
      h("table", { class: "grid progress" }, h("thead", null, h("tr", null, h("th", null, "task"), h("th", null, "step"), h("th", null, "at"))), this.body),
      this.notes,
      this.result,
    );
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  line(m: any): void {
    if (m.kind === "started") {
      const by = m.by ? `${m.by.role} ${m.by.session}` : "";
      clear(this.head);
      append(this.head, [h("b", null, m.action), ` · ${m.summary} · by ${by} · ${clock(parseTime(m.time))} · `, h("span", { class: "mono dim" }, this.id)]);
    } else if (m.kind === "event") {
      const e = m.event;
      const key = e.task === null || e.task === undefined ? e.host : `${e.host}/${e.task}`;
      let row = this.rows.get(key);
      if (!row) {
        const step = h("td", { class: "step" });
        const time = h("td", { class: "dim num" });
        const tr = h("tr", { class: "progress-row", "data-task": key }, h("td", { class: "mono" }, key), step, time);
        row = { tr, step, time };
        this.rows.set(key, row);
        this.body.append(tr);
      }
      const text: string = m.text.includes(": ") ? m.text.slice(m.text.indexOf(": ") + 2) : m.text;
      setText(row.step, text);
      row.step.className = "step ev-" + e.event;
      setText(row.time, clock(parseTime(m.time)));
    } else if (m.kind === "notice") {
      this.notes.append(h("div", { class: "banner " + (m.level === "bad" ? "bad" : m.level === "warn" ? "warn" : "info") }, m.text));
      if (m.plan_ansi) this.notes.append(h("pre", { class: "diff" }, ansi(m.plan_ansi)));
    } else if (m.kind === "finished") {
      setText(this.state, m.result);
      this.state.className = "pill " + (m.ok ? "st-ok" : m.result === "locked" || m.result === "interrupted" ? "st-warn" : "st-bad");
      this.result.hidden = false;
      clear(this.result);
      this.result.append(h("div", null, m.summary));
      for (const f of m.failures ?? []) this.result.append(h("div", { class: "bad" }, `FAILED ${f}`));
      this.el.classList.add("done");
    }
  }
}

function renderActivity(el: HTMLElement, acts: Activity[]) {
  clear(el);
  if (acts.length === 0) {
    el.append(h("li", { class: "dim" }, "nothing since the dashboard started watching"));
    return;
  }
  for (const a of acts.slice(-15).reverse()) {
    const subject = a.what === "lock" ? `lock on ${a.host}` : a.what === "stopped" ? `stop mark on ${a.host}` : a.task !== null ? `${a.host}/${a.task}` : a.host;
    el.append(
      h(
        "li",
        { class: "act-" + a.action.split(":")[0] },
        h("span", { class: "dim num" }, clock(parseTime(a.time))),
        " ",
        h("span", { class: "mono" }, subject),
        " ",
        a.action,
        a.exit_code !== null && a.action === "die" ? ` (exit ${a.exit_code})` : "",
      ),
    );
  }
}

function renderFacts(el: HTMLElement, a: JobAnswer) {
  clear(el);
  const j = a.job;
  if (!j) {
    el.append(h("span", { class: "bad" }, "not in the spec: drover up removes its containers"));
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

function renderTimeline(el: HTMLElement, entries: TimelineEntry[]) {
  clear(el);
  if (entries.length === 0) {
    el.append(h("li", { class: "dim" }, "no deployed generation on the hosts"));
    return;
  }
  for (const e of entries) {
    const kind = e.kind.replace(" ", "-");
    el.append(
      h(
        "li",
        { class: `tl tl-${kind}` },
        h("span", { class: "tl-dot" }),
        h(
          "div",
          { class: "tl-body" },
          h("div", null, h("span", { class: `pill tl-kind tl-kind-${kind}` }, e.kind), " ", h("span", { title: e.at }, when(e.at)), " ", h("span", { class: "dim" }, `by ${e.by}`)),
          h("div", { class: "mono tl-image" }, e.image),
          h("div", { class: "dim" }, e.command, " · ", e.tasks.join(", ")),
          e.why ? h("div", { class: "bad" }, e.why) : null,
        ),
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
  el.append(h("div", { class: "scroll-x" }, h("table", { class: "grid" }, h("thead", null, h("tr", null, ...["tag", "built", "registry", "on hosts", "running in", ""].map((c) => h("th", null, c)))), body)));
}
