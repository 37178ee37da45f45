// The only way this UI puts anything on the page: elements built with
// createElement and text set as text nodes. Nothing a host, a container or a
// log line says is ever parsed as HTML.

export type Child = Node | string | number | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | undefined> | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === false) continue;
      if (k === "class") el.className = String(v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

/** Sets an element's text only when it changed (cheap on repeated renders). */
export function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

export function clear(el: HTMLElement): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** `/jobs/a%20b/...` from raw names. */
export function path(...parts: (string | number)[]): string {
  return "/" + parts.map((p) => encodeURIComponent(String(p))).join("/");
}

/** The coloured ANSI text drover's renderer prints, as spans (text only). */
export function ansi(text: string): DocumentFragment {
  const out = document.createDocumentFragment();
  const re = /\x1b\[([0-9;]*)m/g;
  let classes: string[] = [];
  let last = 0;
  const push = (s: string) => {
    if (!s) return;
    if (classes.length === 0) out.appendChild(document.createTextNode(s));
    else out.appendChild(h("span", { class: classes.join(" ") }, s));
  };
  for (let m = re.exec(text); m; m = re.exec(text)) {
    push(text.slice(last, m.index));
    last = re.lastIndex;
    for (const code of (m[1] || "0").split(";")) {
      const n = Number(code);
      if (n === 0) classes = [];
      else if (n === 1) classes.push("a-bold");
      else if (n >= 30 && n <= 37) classes = classes.filter((c) => !c.startsWith("a-fg")).concat("a-fg" + (n - 30));
    }
  }
  push(text.slice(last));
  return out;
}

/** Whether this page's session is an operator's (a viewer opens no shell, takes no action). */
export function operator(): boolean {
  return document.body.dataset.role === "operator";
}

/** `fetch` of JSON, throwing the server's `error` (its words) on failure. */
export async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  const r = await fetch(url, { ...init, headers: { accept: "application/json", ...(init?.headers ?? {}) } });
  const body = await r.json().catch(() => ({ error: `${r.status} ${r.statusText}` }));
  if (!r.ok) {
    const e = new Error(body.error ?? `${r.status}`) as Error & { status: number; body: unknown };
    e.status = r.status;
    e.body = body;
    throw e;
  }
  return body as T;
}
