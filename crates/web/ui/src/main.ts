// The dashboard's pages, chosen by the address. The server sends the same
// empty page for each; this script fills it from the JSON API and the live
// feeds, with text nodes only.

import { channel } from "./channel";
import { h, path, setText } from "./dom";
import { isTyping, jobPage } from "./job";
import { overview } from "./overview";
import { shellPage } from "./shell";
import { taskPage } from "./taskpage";

const app = document.getElementById("app")!;
const env = document.body.dataset.env ?? "";
const role = document.body.dataset.role ?? "viewer";

function chrome(crumbs: (string | [string, string])[]): HTMLElement {
  const linkState = h("span", { class: "link", title: "the live feed" }, "connecting");
  const rolePill = h(
    "span",
    { class: `role role-${role}`, title: role === "operator" ? "signed in as an operator: shells and actions" : "signed in as a viewer: everything to see, no shell, no action" },
    role,
  );
  const logout = h("form", { method: "post", action: "/logout", class: "logout" }, h("button", { type: "submit", title: "end this browser's session and close its shells" }, "sign out"));
  const nav = h("nav", { class: "crumbs" }, h("a", { href: "/", class: "brand" }, "drover"), h("span", { class: "env" }, env));
  for (const c of crumbs) {
    nav.append(h("span", { class: "sep" }, "/"));
    nav.append(typeof c === "string" ? h("span", { class: "crumb" }, c) : h("a", { href: c[1], class: "crumb" }, c[0]));
  }
  const top = h("header", { class: "top" }, nav, h("div", { class: "right" }, linkState, rolePill, h("button", { type: "button", class: "help-btn", title: "keyboard shortcuts (?)" }, "?"), logout));
  channel().onState((s, why) => {
    setText(linkState, s === "live" ? "live" : s === "signed-out" ? "signed out" : s);
    linkState.className = "link " + s;
    linkState.title = why ?? "the live feed";
    if (s === "signed-out") {
      document.body.classList.add("signed-out");
    }
  });
  return top;
}

function help(): HTMLElement {
  const rows: [string, string][] = [
    ["/", "filter"],
    ["j / k", "next / previous task (overview), scroll (logs)"],
    ["Enter", "open the selected task's logs"],
    ["l / s", "the selected task's logs / shell"],
    ["space", "pause or resume the log view"],
    ["G / g", "newest / oldest line"],
    ["d", "download the whole log"],
    ["r", "refresh the diff (job page)"],
    ["Esc", "leave a field, close this"],
  ];
  const box = h(
    "div",
    { class: "help", hidden: true, role: "dialog", "aria-label": "keyboard shortcuts" },
    h("div", { class: "help-box" }, h("h2", null, "keys"), h("table", null, h("tbody", null, ...rows.map(([k, v]) => h("tr", null, h("td", null, h("kbd", null, k)), h("td", null, v)))))),
  );
  box.addEventListener("click", () => (box.hidden = true));
  return box;
}

function route(): void {
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  const main = h("main", { class: "page" });
  const helpBox = help();
  const missing = document.body.dataset.error;
  if (missing) {
    // A job or task the files do not have: the server said why, in the CLI's words.
    const crumbs: (string | [string, string])[] = parts[0] === "jobs" && parts[1] ? [parts[1]] : [];
    app.append(chrome([...crumbs, "not found"]), main);
    main.append(h("div", { class: "banner bad notfound" }, missing), h("p", null, h("a", { href: "/" }, "the overview")));
    document.title = `not found · drover`;
    return;
  }
  if (parts.length === 0) {
    app.append(chrome([]), main, helpBox);
    overview(main);
    document.title = `${env} · drover`;
    keyboardRows(main);
  } else if (parts[0] === "jobs" && parts.length === 2) {
    app.append(chrome([[parts[1], path("jobs", parts[1])]]), main, helpBox);
    jobPage(main, parts[1]);
    keyboardRows(main);
  } else if (parts[0] === "jobs" && parts[2] === "tasks" && parts.length >= 5) {
    const [job, host, task] = [parts[1], parts[3], Number(parts[4])];
    const crumbs: (string | [string, string])[] = [[job, path("jobs", job)], [`${host}/${task}`, path("jobs", job, "tasks", host, task)]];
    if (parts[5] === "shell") {
      app.append(chrome([...crumbs, "shell"]), main, helpBox);
      shellPage(main, job, host, task);
    } else {
      app.append(chrome([...crumbs, "logs"]), main, helpBox);
      taskPage(main, job, host, task);
    }
  } else {
    app.append(chrome(["not found"]), main);
    main.append(h("p", null, "no such page"));
  }
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      helpBox.hidden = true;
      if (isTyping(e) && !(e.target as HTMLElement).closest(".xterm")) (e.target as HTMLElement).blur();
      return;
    }
    if (isTyping(e)) return;
    if (e.key === "?") helpBox.hidden = !helpBox.hidden;
    if (e.key === "/") {
      const f = main.querySelector<HTMLInputElement>("input.filter");
      if (f) {
        e.preventDefault();
        f.focus();
        f.select();
      }
    }
  });
  app.querySelector(".help-btn")?.addEventListener("click", () => (helpBox.hidden = !helpBox.hidden));
}

/** j/k move through the task rows; Enter, l and s open them. */
function keyboardRows(main: HTMLElement): void {
  let current: HTMLElement | null = null;
  const rows = () => [...main.querySelectorAll<HTMLElement>("tr.task")].filter((r) => r.offsetParent !== null);
  const select = (r: HTMLElement | null) => {
    current?.classList.remove("cur");
    current = r;
    if (r) {
      r.classList.add("cur");
      r.scrollIntoView({ block: "nearest" });
    }
  };
  document.addEventListener("keydown", (e) => {
    if (isTyping(e) || e.ctrlKey || e.metaKey || e.altKey) return;
    const all = rows();
    const i = current ? all.indexOf(current) : -1;
    if (e.key === "j" || e.key === "ArrowDown") {
      e.preventDefault();
      select(all[Math.min(all.length - 1, i + 1)] ?? null);
    } else if (e.key === "k" || e.key === "ArrowUp") {
      e.preventDefault();
      select(all[Math.max(0, i - 1)] ?? null);
    } else if ((e.key === "Enter" || e.key === "l") && current?.dataset.href) {
      location.href = current.dataset.href;
    } else if (e.key === "s" && current?.dataset.shell) {
      location.href = current.dataset.shell;
    }
  });
}

route();
