// `/`: every host and every job with its tasks, live.

import { append, clear, h, path, setText } from "./dom";
import { count, when } from "./format";
import { live, type HostView, type JobView, type Overview, type TaskStatus } from "./live";
import { header, TaskRows, troubled } from "./tasks";

interface JobBlock {
  body: HTMLTableSectionElement;
  name: HTMLAnchorElement;
  image: HTMLSpanElement;
  counts: HTMLSpanElement;
  lock: HTMLSpanElement;
  rows: TaskRows;
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

  const feed = live();
  feed.on(render);
  const rerender = () => {
    if (feed.last) render(feed.last);
    const url = new URL(location.href);
    if (filter.value) url.searchParams.set("q", filter.value);
    else url.searchParams.delete("q");
    history.replaceState(null, "", url);
  };
  filter.addEventListener("input", rerender);
  onlyTrouble.addEventListener("change", rerender);
  setInterval(() => {
    for (const b of blocks.values()) b.rows.tick(feed.skew);
  }, 1000);
}

function renderSummary(el: HTMLElement, o: Overview) {
  const running = o.tasks.filter((t) => t.state === "running").length;
  const trouble = o.tasks.filter(troubled).length;
  const up = o.hosts.filter((x) => x.state === "up").length;
  clear(el);
  el.append(
    h("span", { class: "stat" }, h("b", null, count(o.jobs.length)), " jobs"),
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
  const lock = h("span", { class: "lock", hidden: true });
  const head = h("tr", { class: "job-head" }, h("td", { colspan: "10" }, link, counts, lock, image));
  const body = h("tbody", { class: "job" }, head);
  return { body, name: link, image, counts, lock, rows: new TaskRows(body, specImage, head) };
}

function fillBlock(block: JobBlock, job: JobView | undefined, tasks: TaskStatus[]) {
  const running = tasks.filter((t) => t.state === "running").length;
  setText(block.counts, `${running}/${tasks.length} running`);
  block.counts.className = "job-counts " + (running === tasks.length && tasks.length > 0 ? "ok" : tasks.some(troubled) ? "bad" : "");
  setText(block.image, job ? job.image : "not in the spec");
  const lock = job?.locks[0];
  block.lock.hidden = !lock;
  setText(block.lock, lock ? `locked by ${lock.by}${lock.reason ? `: ${lock.reason}` : ""}` : "");
}
