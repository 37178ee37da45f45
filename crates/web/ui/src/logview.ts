// A log view that stays smooth at millions of lines.
//
// Lines are kept in fixed-size chunks of plain arrays (text, time, source),
// never as DOM: only the rows on screen exist as elements, a pool reused as
// the view scrolls. Every row has the same height, so the row at any scroll
// position is arithmetic. Browsers cap an element's height (about 16-33
// million pixels), so past that the scrollbar maps proportionally onto the
// lines. Beyond MAX_LINES the oldest chunk is dropped.

import { h, setText } from "./dom";
import { clock } from "./format";

const CHUNK = 16384;
export const MAX_LINES = 2_000_000;
const MAX_PX = 8_000_000;

/** 0: stdout, 1: stderr, 2: a note from drover (dropped lines, a host away). */
export type Kind = 0 | 1 | 2;

interface Chunk {
  text: string[];
  time: Float64Array;
  source: Uint16Array;
  kind: Uint8Array;
  n: number;
}

export class LogStore {
  private chunks: Chunk[] = [];
  /** Lines dropped from the front, for numbering. */
  first = 0;
  length = 0;
  sources: string[] = [];
  private sourceIds = new Map<string, number>();

  push(time: number, source: string, kind: Kind, text: string): void {
    let last = this.chunks[this.chunks.length - 1];
    if (!last || last.n === CHUNK) {
      last = { text: new Array(CHUNK), time: new Float64Array(CHUNK), source: new Uint16Array(CHUNK), kind: new Uint8Array(CHUNK), n: 0 };
      this.chunks.push(last);
    }
    let id = this.sourceIds.get(source);
    if (id === undefined) {
      id = this.sources.length;
      this.sources.push(source);
      this.sourceIds.set(source, id);
    }
    last.text[last.n] = text;
    last.time[last.n] = time;
    last.source[last.n] = id;
    last.kind[last.n] = kind;
    last.n++;
    this.length++;
    if (this.length > MAX_LINES) {
      const gone = this.chunks.shift()!;
      this.length -= gone.n;
      this.first += gone.n;
    }
  }

  clear(): void {
    this.chunks = [];
    this.length = 0;
    this.first = 0;
  }

  get(i: number): { text: string; time: number; source: string; kind: Kind } {
    const c = this.chunks[Math.floor(i / CHUNK)];
    const j = i % CHUNK;
    return { text: c.text[j], time: c.time[j], source: this.sources[c.source[j]], kind: c.kind[j] as Kind };
  }
}

interface RowEl {
  el: HTMLDivElement;
  time: HTMLSpanElement;
  source: HTMLSpanElement;
  text: HTMLSpanElement;
  index: number;
}

export class LogView {
  readonly el: HTMLDivElement;
  private spacer: HTMLDivElement;
  private layer: HTMLDivElement;
  private rows: RowEl[] = [];
  private rowHeight = 18;
  private dirty = true;
  /** Keep the newest line in view as lines arrive. */
  follow = true;
  /** Frozen: lines are kept but the view does not move. */
  paused = false;
  showSource = false;
  selected = -1;
  onSelect: (i: number) => void = () => {};
  onFollowChange: (following: boolean) => void = () => {};
  private programmatic = false;

  constructor(readonly store: LogStore) {
    this.spacer = h("div", { class: "log-spacer" });
    this.layer = h("div", { class: "log-layer" });
    this.el = h("div", { class: "logview", tabindex: "0", role: "log", "aria-live": "off" }, this.spacer, this.layer);
    this.el.addEventListener("scroll", () => {
      if (!this.programmatic) {
        const atEnd = this.el.scrollTop + this.el.clientHeight >= this.el.scrollHeight - 4;
        if (atEnd !== this.follow) {
          this.follow = atEnd;
          this.onFollowChange(atEnd);
        }
      }
      this.programmatic = false;
      this.draw();
    });
    this.el.addEventListener("click", (e) => {
      const row = (e.target as HTMLElement).closest(".log-row") as HTMLElement | null;
      if (row && row.dataset.i) {
        this.selected = Number(row.dataset.i);
        this.onSelect(this.selected);
        this.draw();
      }
    });
    new ResizeObserver(() => this.invalidate()).observe(this.el);
    const frame = () => {
      if (this.dirty && !this.paused) {
        this.dirty = false;
        this.layout();
      }
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  /** New lines (or a cleared store): redraw on the next frame. */
  invalidate(): void {
    this.dirty = true;
  }

  measure(): void {
    const probe = h("div", { class: "log-row" }, "Mg");
    this.layer.append(probe);
    const hgt = probe.getBoundingClientRect().height;
    probe.remove();
    if (hgt > 0) this.rowHeight = Math.round(hgt);
  }

  private total(): number {
    return this.store.length * this.rowHeight;
  }

  private layout(): void {
    const height = Math.min(this.total(), MAX_PX);
    this.spacer.style.height = `${height}px`;
    if (this.follow) {
      this.programmatic = true;
      const target = Math.max(0, height - this.el.clientHeight);
      if (Math.abs(this.el.scrollTop - target) > 1) this.el.scrollTop = target;
      else this.programmatic = false;
    }
    this.draw();
  }

  scrollToEnd(): void {
    this.follow = true;
    this.onFollowChange(true);
    this.invalidate();
  }

  /** Moves the view by `lines` (keyboard paging). */
  scrollBy(lines: number): void {
    this.el.scrollTop += lines * this.rowHeight * (this.total() > MAX_PX ? MAX_PX / this.total() : 1);
  }

  private draw(): void {
    const n = this.store.length;
    const rh = this.rowHeight;
    const view = this.el.clientHeight;
    const visible = Math.ceil(view / rh) + 1;
    const total = this.total();
    let first: number;
    let offset: number;
    if (total <= MAX_PX) {
      first = Math.floor(this.el.scrollTop / rh);
      offset = first * rh;
    } else {
      // Proportional: the scrollbar's position picks the line.
      const range = Math.max(1, MAX_PX - view);
      const ratio = Math.min(1, this.el.scrollTop / range);
      first = Math.round(ratio * Math.max(0, n - visible + 1));
      offset = this.el.scrollTop;
    }
    first = Math.max(0, Math.min(first, Math.max(0, n - 1)));
    this.layer.style.transform = `translateY(${offset}px)`;
    while (this.rows.length < visible) {
      const time = h("span", { class: "log-time" });
      const source = h("span", { class: "log-src" });
      const text = h("span", { class: "log-text" });
      const el = h("div", { class: "log-row" }, time, source, text);
      this.layer.append(el);
      this.rows.push({ el, time, source, text, index: -1 });
    }
    for (let r = 0; r < this.rows.length; r++) {
      const row = this.rows[r];
      const i = first + r;
      if (r >= visible || i >= n) {
        row.el.hidden = true;
        row.index = -1;
        continue;
      }
      row.el.hidden = false;
      const line = this.store.get(i);
      row.el.dataset.i = String(i);
      if (row.index !== i || row.el.classList.contains("stale")) {
        setText(row.time, clock(line.time));
        setText(row.source, this.showSource ? line.source : "");
        setText(row.text, line.text);
        row.el.className = "log-row" + (line.kind === 1 ? " err" : line.kind === 2 ? " note" : "");
        row.index = i;
      }
      row.el.classList.toggle("sel", i === this.selected);
    }
    this.el.classList.toggle("with-src", this.showSource);
  }

  /** Every row is redrawn (after the store was cleared or the columns changed). */
  refresh(): void {
    for (const row of this.rows) row.index = -1;
    this.invalidate();
  }
}
