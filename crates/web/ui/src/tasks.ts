// The task rows the overview and a job's page show: state, health, uptime,
// restarts, exit code, memory, CPU, container and image. Rows are kept by
// key and only their changed cells are touched, so a selection or a hover
// survives the live updates.

import { h, operator, path, setText } from "./dom";
import { bytes, duration, parseTime, percent } from "./format";
import type { TaskStatus } from "./channel";

export function taskKey(t: TaskStatus): string {
  return `${t.job}\u0000${t.host}\u0000${t.task ?? "?"}\u0000${t.container ?? ""}`;
}

export function taskName(t: TaskStatus): string {
  return `${t.host}/${t.task ?? "?"}`;
}

/** The state's colour class. */
export function stateClass(t: TaskStatus): string {
  if (t.state === "running") {
    if (t.restart_loop) return "st-bad";
    if (t.health === "unhealthy") return "st-bad";
    if (t.health === "starting") return "st-warn";
    return t.in_spec ? "st-ok" : "st-warn";
  }
  switch (t.state) {
    case "stopped":
    case "created":
    case "paused":
      return "st-idle";
    case "restarting":
      return "st-warn";
    case "connecting":
      return "st-idle";
    case "unreachable":
      return "st-gone";
    default:
      return "st-bad";
  }
}

export function stateText(t: TaskStatus): string {
  let s = t.state;
  if (t.state === "stopped" && t.stopped_by_drover) s = "stopped by drover";
  if (t.state !== "running" && t.exit_code !== null && t.state !== "stopped") s += ` (exit ${t.exit_code})`;
  if (t.state === "stopped" && t.exit_code !== null) s += ` (exit ${t.exit_code})`;
  return s;
}

export function flags(t: TaskStatus): string[] {
  const out: string[] = [];
  if (t.restart_loop) out.push("crash loop");
  if (t.oom_killed) out.push("killed for memory");
  if (!t.in_spec) out.push("not in spec");
  return out;
}

/** Whether a task needs a look. */
export function troubled(t: TaskStatus): boolean {
  const c = stateClass(t);
  return c === "st-bad" || c === "st-gone" || c === "st-warn";
}

interface Row {
  tr: HTMLTableRowElement;
  task: HTMLAnchorElement;
  state: HTMLSpanElement;
  flags: HTMLSpanElement;
  health: HTMLTableCellElement;
  uptime: HTMLTableCellElement;
  restarts: HTMLTableCellElement;
  memory: HTMLTableCellElement;
  cpu: HTMLTableCellElement;
  cpuBar: HTMLSpanElement;
  cpuText: HTMLSpanElement;
  container: HTMLTableCellElement;
  image: HTMLTableCellElement;
  actions: HTMLTableCellElement;
  data: TaskStatus;
}

export const COLUMNS = ["task", "state", "health", "uptime", "restarts", "memory", "cpu", "container", "image", ""];

export function header(withJob: boolean): HTMLTableSectionElement {
  return h(
    "thead",
    null,
    h("tr", null, ...(withJob ? ["job"] : []).concat(COLUMNS).map((c) => h("th", { class: `c-${c || "actions"}` }, c))),
  );
}

export class TaskRows {
  private rows = new Map<string, Row>();
  constructor(
    private body: HTMLTableSectionElement,
    private specImage: (job: string) => string | undefined,
    /** Rows go after this one (a job's heading), if given. */
    private head: HTMLTableRowElement | null = null,
  ) {}

  update(tasks: TaskStatus[]): void {
    const seen = new Set<string>();
    let prev: HTMLTableRowElement | null = null;
    for (const t of tasks) {
      const key = taskKey(t);
      seen.add(key);
      let row = this.rows.get(key);
      if (!row) {
        row = this.make(t);
        this.rows.set(key, row);
      }
      this.fill(row, t);
      const want: ChildNode | null = prev ? prev.nextSibling : this.head ? this.head.nextSibling : this.body.firstChild;
      if (want !== row.tr) this.body.insertBefore(row.tr, want);
      prev = row.tr;
    }
    for (const [key, row] of this.rows) {
      if (!seen.has(key)) {
        row.tr.remove();
        this.rows.delete(key);
      }
    }
  }

  /** Uptimes tick between snapshots, from the server's clock. */
  tick(skew: number): void {
    for (const row of this.rows.values()) {
      const t = row.data;
      if (t.state === "running" && t.started_at) {
        const secs = (Date.now() + skew - parseTime(t.started_at)) / 1000;
        setText(row.uptime, duration(secs));
      }
    }
  }

  private make(t: TaskStatus): Row {
    const task = h("a", { class: "mono" });
    const state = h("span", { class: "pill" });
    const fl = h("span", { class: "flags" });
    const cpuBar = h("span", { class: "bar" });
    const cpuText = h("span");
    // data-label: what a cell is called when the row is a card (phones).
    const cells = {
      health: h("td", { class: "c-health", "data-label": "health" }),
      uptime: h("td", { class: "c-uptime num", "data-label": "up" }),
      restarts: h("td", { class: "c-restarts num", "data-label": "restarts" }),
      memory: h("td", { class: "c-memory num", "data-label": "memory" }),
      cpu: h("td", { class: "c-cpu num", "data-label": "cpu" }, h("span", { class: "barwrap" }, cpuBar), cpuText),
      container: h("td", { class: "c-container mono dim", "data-label": "container" }),
      image: h("td", { class: "c-image mono", "data-label": "image" }),
      actions: h("td", { class: "c-actions" }),
    };
    const tr = h(
      "tr",
      { class: "task", tabindex: "-1" },
      h("td", { class: "c-task" }, task),
      h("td", { class: "c-state" }, state, fl),
      cells.health,
      cells.uptime,
      cells.restarts,
      cells.memory,
      cells.cpu,
      cells.container,
      cells.image,
      cells.actions,
    );
    return { tr, task, state, flags: fl, cpuBar, cpuText, ...cells, data: t };
  }

  private fill(row: Row, t: TaskStatus): void {
    const prev = row.data;
    row.data = t;
    const fresh = row.task.textContent === "";
    setText(row.task, taskName(t));
    // Only the spec's tasks have pages (as `drover logs --task` knows only them).
    if (fresh && t.task !== null && t.in_spec) {
      const href = path("jobs", t.job, "tasks", t.host, t.task);
      row.task.href = href;
      row.tr.dataset.href = href;
      if (operator()) row.tr.dataset.shell = href + "/shell";
      row.actions.append(h("a", { href, class: "act", title: "live logs (l)" }, "logs"));
      if (operator()) row.actions.append(h("a", { href: href + "/shell", class: "act", title: "a shell in the task (s)" }, "shell"));
    }
    setText(row.state, stateText(t));
    row.state.className = "pill " + stateClass(t);
    setText(row.flags, flags(t).join(" · "));
    row.state.title = t.failing ?? "";
    setText(row.health, t.health ?? "");
    row.health.className = "c-health " + (t.health === "healthy" ? "h-ok" : t.health === "unhealthy" ? "h-bad" : "h-warn");
    if (fresh || prev.started_at !== t.started_at || t.state !== "running") {
      setText(row.uptime, t.state === "running" ? duration(t.uptime_seconds) : "–");
    }
    setText(row.restarts, t.restarts === null ? "–" : String(t.restarts));
    row.restarts.classList.toggle("warn", (t.restarts ?? 0) > 0);
    setText(row.memory, bytes(t.memory_bytes));
    setText(row.cpuText, percent(t.cpu_percent));
    row.cpuBar.style.width = `${Math.min(100, t.cpu_percent ?? 0)}%`;
    setText(row.container, t.container ?? "");
    const image = t.image ?? "";
    setText(row.image, image);
    const spec = this.specImage(t.job);
    row.image.classList.toggle("drift", !!image && !!spec && image !== spec);
    row.image.title = spec && image && image !== spec ? `the spec says ${spec}` : image;
    row.tr.classList.toggle("trouble", troubled(t));
  }
}
