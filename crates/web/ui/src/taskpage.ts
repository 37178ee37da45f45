// `/jobs/{job}/tasks/{host}/{task}`: the task's live logs (or the whole
// job's, merged), pushed by the server as SSE and filtered there.
//
// The browser's EventSource reconnects by itself after a dropped connection
// and sends the last event's id, from which the server resumes with no gap
// and no duplicate. Changing a filter starts a new stream.

import { clear, h, path, setText } from "./dom";
import { count, parseTime } from "./format";
import { isTyping } from "./job";
import { live } from "./live";
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
  const shellLink = h("a", { href: path("jobs", job, "tasks", host, task, "shell"), class: "button", title: "a shell in this task (s)" }, "shell");
  const head = h(
    "div",
    { class: "page-head" },
    h("h1", null, h("a", { href: path("jobs", job) }, job), " ", h("span", { class: "mono" }, `${host}/${task}`), " ", state),
    h("div", { class: "facts" }, shellLink),
  );

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
  root.append(head, h("div", { class: "toolbar" }, scope, stream, tail, grep, pause, toEnd, download, status), view.el, detail);
  view.measure();
  // For the browser test (and a curious operator's console).
  (window as unknown as { drover: unknown }).drover = { logs: { store, view } };
  document.title = `${host}/${task} · ${job} · drover`;

  live().on((o) => {
    const t = o.tasks.find((x) => x.job === job && x.host === host && x.task === task);
    if (!t) {
      setText(state, "not in the spec");
      state.className = "pill st-idle";
      return;
    }
    setText(state, stateText(t));
    state.className = "pill " + stateClass(t);
  });

  let source: EventSource | null = null;
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
    source?.close();
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
    q.set("follow", "true");
    q.set("tail", tail.value);
    const url = new URL(location.href);
    for (const k of ["scope", "stream", "tail", "grep"]) url.searchParams.delete(k);
    if (scope.value === "job") url.searchParams.set("scope", "job");
    if (stream.value) url.searchParams.set("stream", stream.value);
    if (tail.value !== "1000") url.searchParams.set("tail", tail.value);
    if (grep.value) url.searchParams.set("grep", grep.value);
    history.replaceState(null, "", url);

    const es = new EventSource(`/api${path("jobs", job, "logs")}?${q}`);
    source = es;
    linkState = "connecting";
    renderStatus();
    es.onopen = () => {
      linkState = "following";
      renderStatus();
    };
    es.onmessage = (e) => {
      const l = JSON.parse(e.data) as Line;
      store.push(parseTime(l.time), `${l.host}/${l.task}`, l.stream === "stderr" ? 1 : 0, l.truncated ? l.line + " …[cut]" : l.line);
      received++;
      if (view.paused) since++;
      view.invalidate();
      scheduleStatus();
    };
    es.addEventListener("dropped", (e) => {
      const d = JSON.parse((e as MessageEvent).data);
      dropped += d.lines;
      store.push(Date.now(), `${d.host}/${d.task}`, 2, `… ${count(d.lines)} lines of ${d.host}/${d.task} dropped: the browser could not keep up with the container`);
      view.invalidate();
      scheduleStatus();
    });
    es.addEventListener("note", (e) => {
      const d = JSON.parse((e as MessageEvent).data);
      store.push(Date.now(), "drover", 2, `drover: ${d.note}`);
      view.invalidate();
    });
    es.addEventListener("end", (e) => {
      const d = JSON.parse((e as MessageEvent).data);
      es.close();
      linkState = `ended: ${d.reason}`;
      renderStatus();
    });
    es.onerror = () => {
      // EventSource retries by itself (with Last-Event-ID) unless the
      // server refused outright.
      linkState = es.readyState === EventSource.CLOSED ? "disconnected (reload to sign in again)" : "reconnecting…";
      renderStatus();
    };
  };

  let statusTimer = 0;
  const scheduleStatus = () => {
    if (statusTimer) return;
    statusTimer = window.setTimeout(() => {
      statusTimer = 0;
      renderStatus();
    }, 200);
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
