export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n}B` : `${v.toFixed(1)}${units[u]}`;
}

export function duration(secs: number | null | undefined): string {
  if (secs === null || secs === undefined || secs < 0) return "–";
  const s = Math.floor(secs);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

export function percent(p: number | null | undefined): string {
  if (p === null || p === undefined) return "–";
  return `${p.toFixed(1)}%`;
}

/** Milliseconds since the epoch of an RFC 3339 time (any precision). */
export function parseTime(text: string | null | undefined): number {
  if (!text) return NaN;
  // Date.parse takes up to milliseconds: cut the nanoseconds.
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (!m) return Date.parse(text);
  const frac = m[2] ? m[2].slice(0, 4) : "";
  return Date.parse(m[1] + frac + m[3]);
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** `14:03:07.123` in local time. */
export function clock(ms: number): string {
  if (!isFinite(ms)) return "";
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** `2026-11-25 14:03` in local time, or how long ago when recent. */
export function when(text: string | null | undefined): string {
  const ms = parseTime(text);
  if (!isFinite(ms) || ms <= 0) return "–";
  const ago = (Date.now() - ms) / 1000;
  if (ago >= 0 && ago < 86400 * 2) return `${duration(ago)} ago`;
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function count(n: number): string {
  return n.toLocaleString("en-US");
}
