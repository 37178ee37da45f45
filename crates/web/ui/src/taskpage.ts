// `/jobs/{job}/tasks/{host}/{task}`: the task at a glance (state,
// restarts, last exit code and why, health's last output, memory and CPU
// over the last hour) and its live logs (or the whole job's, merged),
// filtered on the server.
//
// Everything comes over the page's one WebSocket: the task's row and chart
// points, and the log lines in batches. After a reconnect the log
// subscription is made again from the last batch's cursor, and the server
// resumes right after it, with no gap and no duplicate. Changing a filter
// starts a new subscription.

import { Chart, type Series } from "./charts";
import { channel, type Message, type TaskStatus } from "./channel";
import { clear, h, operator, path, setText } from "./dom";
import { bytes, count, duration, parseTime, percent, when } from "./format";
import { isTyping } from "./job";
import { LogStore, LogView, MAX_LINES } from "./logview";
import { stateClass, stateText } from "./tasks";

interface Line {
  host: string;
  task: number;
  stream: "stdout" | "stderr";
  time: string;
  line: string;
  truncated?: boolean;
}

export function taskPage(root: HTMLElement, job: string, host: string, task: number): void {
  const params = new URLSearchParams(location.search);
  const state = h("span", { class: "pill" });
  const shellLink = h("a", { href: path("jobs", job, "tasks", host, task, "shell"), class: "button", title: "a shell in this task (s)", hidden: !operator() }, "shell");
  const head = h(
    "div",
    { class: "page-head" },
    h("h1", null, h("a", { href: path("jobs", job) }, job), " ", h("span", { class: "mono" }, `${host}/${task}`), " ", state),
    h("div", { class: "facts" }, shellLink),
  );
  const glance = h("div", { class: "task-glance" });
  const why = h("div", { class: "banner bad why", hidden: true });
  const healthOut = h("pre", { class: "health-output", hidden: true });
  const memory = new Chart("memory", (p) => p[1], (v) => bytes(v), "chart-mem");
  const cpu = new Chart("cpu", (p) => p[2], (v) => percent(v), "chart-cpu");
  const charts = h("div", { class: "charts" }, memory.el, cpu.el);
  const glanceBox = h("section", { class: "task-top" }, h("div", { class: "task-facts" }, glance, why, healthOut), charts);

  const scope = h("select", { title: "this task, or every task of the job merged by time" }, h("option", { value: "task" }, `${host}/${task}`), h("option", { value: "job" }, `all tasks of ${job}`));
  const stream = h("select", { title: "which output" }, h("option", { value: "" }, "stdout + stderr"), h("option", { value: "stdout" }, "stdout"), h("option", { value: "stderr" }, "stderr"));
  const tail = h("select", { title: "lines to start from, per task" }, ...["100", "1000", "10000", "all"].map((v) => h("option", { value: v }, v === "all" ? "everything" : `last ${v}`)));
  const grep = h("input", { type: "search", class: "filter", placeholder: "filter on the server  ( / )", spellcheck: "false", "aria-label": "filter" });
  const pause = h("button", { type: "button", title: "freeze the view; lines keep arriving (space)" }, "pause");
  const toEnd = h("button", { type: "button", title: "jump to the newest line (G)" }, "follow");
  const download = h("a", { class: "button", title: "the whole log as a file, read by the server (d)" }, "download");
  const status = h("span", { class: "log-status" });
  scope.value = params.get("scope") === "job" ? "job" : "task";
  stream.value = params.get("stream") ?? "";
  tail.value = params.get("tail") ?? "1000";
  grep.value = params.get("grep") ?? "";

  const store = new LogStore();
  const view = new LogView(store);
  const detail = h("pre", { class: "log-detail", hidden: true });
  root.classList.add("fill");
  document.body.classList.add("fill");
  root.append(head, glanceBox, h("div", { class: "toolbar" }, scope, stream, tail, grep, pause, toEnd, download, status), view.el, detail);
  view.measure();
  // For the browser test (and a curious operator's console).
  (window as unknown as { drover: unknown }).drover = { logs: { store, view } };
  document.title = `${host}/${task} · ${job} · drover`;

  let series: Series | null = null;
  channel().subscribe({ topic: "task", job, host, task }, (m: Message) => {
    if (m.t === "error") {
      setText(state, "unknown");
      state.className = "pill st-bad";
      why.hidden = false;
      setText(why, m.error);
      return;
    }
    if (m.t === "usage") {
      series = m.series as Series;
      memory.draw(series);
      cpu.draw(series);
      return;
    }
    if (m.t !== "task") return;
    const t = m.task as TaskStatus | null;
    if (!t) {
      setText(state, m.reading ? "reading" : "no container");
      state.className = "pill st-idle";
      return;
    }
    setText(state, stateText(t));
    state.className = "pill " + stateClass(t);
    renderGlance(glance, t);
    why.hidden = !t.failing;
    setText(why, t.failing ?? "");
    const out = (m.detail?.health_output ?? "").trim();
    healthOut.hidden = !t.health || !out;
    setText(healthOut, out ? `last health check: ${out}` : "");
  });
  new ResizeObserver(() => {
    if (series) {
      memory.draw(series);
      cpu.draw(series);
    }
  }).observe(charts);

  let sub: ReturnType<ReturnType<typeof channel>["subscribe"]> | null = null;
  let received = 0;
  let dropped = 0;
  let since = 0;
  let linkState = "";
  const renderStatus = () => {
    const parts = [linkState, `${count(store.length)} lines`];
    if (store.first) parts.push(`oldest ${count(store.first)} let go (over ${count(MAX_LINES)})`);
    if (dropped) parts.push(`${count(dropped)} dropped`);
    if (view.paused && since) parts.push(`${count(since)} new while paused`);
    setText(status, parts.join(" · "));
    status.classList.toggle("warn", dropped > 0);
  };

  const query = () => {
    const q = new URLSearchParams();
    if (scope.value === "task") q.set("task", `${host}/${task}`);
    if (stream.value) q.set("stream", stream.value);
    if (grep.value) q.set("grep", grep.value);
    return q;
  };

  const start = () => {
    sub?.close();
    store.clear();
    view.selected = -1;
    detail.hidden = true;
    view.showSource = scope.value === "job";
    view.refresh();
    view.scrollToEnd();
    received = 0;
    dropped = 0;
    since = 0;
    const q = query();
    download.href = `/api${path("jobs", job, "logs", "download")}?${q}`;
    const url = new URL(location.href);
    for (const k of ["scope", "stream", "tail", "grep"]) url.searchParams.delete(k);
    if (scope.value === "job") url.searchParams.set("scope", "job");
    if (stream.value) url.searchParams.set("stream", stream.value);
    if (tail.value !== "1000") url.searchParams.set("tail", tail.value);
    if (grep.value) url.searchParams.set("grep", grep.value);
    history.replaceState(null, "", url);

    const request: Record<string, unknown> = { topic: "logs", job, follow: "true", tail: tail.value };
    for (const [k, v] of q) request[k] = v;
    linkState = "connecting";
    renderStatus();
    const s = channel().subscribe(request, (m: Message) => {
      if (m.t === "lines") {
        linkState = "following";
        for (const l of m.lines as Line[]) {
          store.push(parseTime(l.time), `${l.host}/${l.task}`, l.stream === "stderr" ? 1 : 0, l.truncated ? l.line + " …[cut]" : l.line);
          received++;
          if (view.paused) since++;
        }
        // A reconnect resumes right after the last line received.
        if (m.cursor) s.update({ after: m.cursor });
        view.invalidate();
        scheduleStatus();
      } else if (m.t === "dropped") {
        dropped += m.lines;
        store.push(Date.now(), `${m.host}/${m.task}`, 2, `… ${count(m.lines)} lines of ${m.host}/${m.task} dropped: the browser could not keep up with the container`);
        view.invalidate();
        scheduleStatus();
      } else if (m.t === "note") {
        store.push(Date.now(), "drover", 2, `drover: ${m.note}`);
        view.invalidate();
      } else if (m.t === "end") {
        linkState = `ended: ${m.reason}`;
        renderStatus();
      } else if (m.t === "error") {
        linkState = "refused";
        store.push(Date.now(), "drover", 2, `drover: ${m.error}`);
        view.invalidate();
        renderStatus();
      }
    });
    sub = s;
    window.setTimeout(() => {
      if (linkState === "connecting" && channel().state === "live") {
        linkState = "following";
        renderStatus();
      }
    }, 1500);
  };

  // At most five times a second; at once when it has been longer (a tab
  // in the background runs its timers late, its socket's messages not).
  let statusTimer = 0;
  let statusAt = 0;
  const scheduleStatus = () => {
    const wait = statusAt + 200 - Date.now();
    if (wait <= 0) {
      statusAt = Date.now();
      renderStatus();
      return;
    }
    if (statusTimer) return;
    statusTimer = window.setTimeout(() => {
      statusTimer = 0;
      statusAt = Date.now();
      renderStatus();
    }, wait);
  };

  const setPaused = (p: boolean) => {
    view.paused = p;
    setText(pause, p ? "resume" : "pause");
    pause.classList.toggle("on", p);
    if (!p) {
      since = 0;
      view.invalidate();
    }
    renderStatus();
  };
  view.onFollowChange = (following) => toEnd.classList.toggle("on", following);
  view.onSelect = (i) => {
    const l = store.get(i);
    clear(detail);
    detail.append(h("span", { class: "dim" }, `${new Date(l.time).toISOString()}  ${l.source}  `), l.text);
    detail.hidden = false;
  };

  pause.addEventListener("click", () => setPaused(!view.paused));
  toEnd.addEventListener("click", () => {
    setPaused(false);
    view.scrollToEnd();
  });
  for (const el of [scope, stream, tail]) el.addEventListener("change", start);
  let grepTimer = 0;
  grep.addEventListener("input", () => {
    clearTimeout(grepTimer);
    grepTimer = window.setTimeout(start, 350);
  });
  document.addEventListener("keydown", (e) => {
    if (isTyping(e)) return;
    if (e.key === " " || e.key === "p") {
      e.preventDefault();
      setPaused(!view.paused);
    } else if (e.key === "G" || e.key === "End") {
      e.preventDefault();
      setPaused(false);
      view.scrollToEnd();
    } else if (e.key === "g" || e.key === "Home") {
      view.follow = false;
      view.el.scrollTop = 0;
    } else if (e.key === "d") {
      download.click();
    } else if (e.key === "s") {
      location.href = shellLink.href;
    } else if (e.key === "j" || e.key === "ArrowDown") {
      view.scrollBy(1);
    } else if (e.key === "k" || e.key === "ArrowUp") {
      view.scrollBy(-1);
    } else if (e.key === "PageDown") {
      e.preventDefault();
      view.scrollBy(Math.floor(view.el.clientHeight / 18));
    } else if (e.key === "PageUp") {
      e.preventDefault();
      view.scrollBy(-Math.floor(view.el.clientHeight / 18));
    }
  });
  start();
}

function renderGlance(el: HTMLElement, t: TaskStatus): void {
  clear(el);
  const fact = (k: string, v: string, cls = "") => h("span", { class: "fact " + cls }, h("span", { class: "dim" }, k + " "), v);
  el.append(
    fact("restarts", t.restarts === null ? "–" : String(t.restarts), (t.restarts ?? 0) > 0 ? "warn" : ""),
    fact("last exit code", t.exit_code === null ? "–" : String(t.exit_code) + (t.oom_killed ? " (killed for memory)" : ""), t.exit_code !== null && t.exit_code !== 0 ? "bad" : ""),
    fact("up", t.state === "running" ? duration(t.uptime_seconds) : "–"),
    fact("started", when(t.started_at)),
    fact("health", t.health ?? "no check", t.health === "unhealthy" ? "bad" : t.health === "healthy" ? "ok" : ""),
    fact("container", t.container ?? "–"),
    fact("image", t.image ?? "–"),
  );
}
