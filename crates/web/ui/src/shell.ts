// `/jobs/{job}/tasks/{host}/{task}/shell`: a terminal connected, as the
// page loads, to a shell in the task. Output arrives as binary frames;
// keystrokes go back as binary frames; resizes and keepalives are JSON text
// frames. When the shell ends the page says why: the exit code, the
// container stopping, or the session ending.

import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";
import { h, operator, path, setText } from "./dom";

export function shellPage(root: HTMLElement, job: string, host: string, task: number): void {
  const status = h("span", { class: "pill st-idle" }, "connecting");
  const again = h("button", { type: "button", hidden: true, title: "open a new shell (Enter)" }, "open again");
  const banner = h("div", { class: "shell-end", hidden: true });
  root.classList.add("fill");
  document.body.classList.add("fill");
  root.append(
    h(
      "div",
      { class: "page-head" },
      h("h1", null, h("a", { href: path("jobs", job) }, job), " ", h("a", { class: "mono", href: path("jobs", job, "tasks", host, task) }, `${host}/${task}`), h("span", { class: "dim" }, " shell "), status),
      h("div", { class: "facts" }, h("a", { class: "button", href: path("jobs", job, "tasks", host, task) }, "logs"), again),
    ),
    banner,
  );
  if (!operator()) {
    setText(status, "refused");
    status.className = "pill st-bad";
    banner.hidden = false;
    setText(banner, "a viewer opens no shell: sign in with the operator's token (DROVER_WEB_TOKEN) for one");
    return;
  }
  const holder = h("div", { class: "term" });
  root.append(holder);
  document.title = `shell ${host}/${task} · ${job} · drover`;

  const term = new Terminal({
    cursorBlink: true,
    fontFamily: '"JetBrains Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace',
    fontSize: 13,
    scrollback: 5000,
    theme: { background: "#0b0d11", foreground: "#d6dae0", cursor: "#8fc1ff", selectionBackground: "#2f81f755" },
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(holder);
  fit.fit();
  term.focus();
  (window as unknown as { drover: unknown }).drover = { term };

  let ws: WebSocket | null = null;
  let ended = false;
  const encoder = new TextEncoder();
  const send = (o: object) => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(o));
  };
  const resize = () => {
    fit.fit();
    send({ type: "resize", rows: term.rows, cols: term.cols });
  };

  const finish = (why: string, code: number | null, kind: string) => {
    if (ended) return;
    ended = true;
    setText(status, kind);
    status.className = "pill " + (kind === "exited" && code === 0 ? "st-idle" : "st-bad");
    setText(banner, why + (code !== null && code !== undefined && !why.includes(String(code)) ? ` (exit code ${code})` : ""));
    banner.hidden = false;
    again.hidden = false;
    term.write(`\r\n\x1b[2m[${why}]\x1b[0m\r\n`);
  };

  const connect = () => {
    ended = false;
    banner.hidden = true;
    again.hidden = true;
    setText(status, "connecting");
    status.className = "pill st-idle";
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/api${path("jobs", job, "tasks", host, task, "shell")}`);
    socket.binaryType = "arraybuffer";
    ws = socket;
    socket.onopen = () => resize();
    socket.onmessage = (e) => {
      if (typeof e.data !== "string") {
        term.write(new Uint8Array(e.data as ArrayBuffer));
        return;
      }
      const m = JSON.parse(e.data);
      if (m.type === "ready") {
        setText(status, "connected");
        status.className = "pill st-ok";
        resize();
      } else if (m.type === "exit") {
        finish(m.reason, m.code, m.reason.startsWith("the shell exited") ? "exited" : "closed");
      } else if (m.type === "error") {
        finish(m.message, null, "refused");
      }
    };
    socket.onclose = (e) => {
      if (!ended) finish(e.reason || (e.code === 1006 ? "the connection to the dashboard was lost" : `closed (${e.code})`), null, "closed");
      ws = null;
    };
  };

  term.onData((d) => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(d));
  });
  term.onBinary((d) => {
    const bytes = new Uint8Array(d.length);
    for (let i = 0; i < d.length; i++) bytes[i] = d.charCodeAt(i) & 0xff;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(bytes);
  });
  new ResizeObserver(() => resize()).observe(holder);
  window.addEventListener("resize", resize);
  // Keepalive from this side too: some proxies only count client traffic.
  setInterval(() => send({ type: "ping" }), 25000);
  again.addEventListener("click", () => {
    term.reset();
    connect();
    term.focus();
  });
  document.addEventListener("keydown", (e) => {
    if (ended && e.key === "Enter") again.click();
  });
  connect();
}
