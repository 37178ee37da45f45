// The overview's live feed: one WebSocket per tab to /api/live, pushed a
// whole snapshot whenever something changed. Reconnects with backoff; a
// close with code 4001 means the session ended (signed out), which is final.

export interface TaskStatus {
  job: string;
  host: string;
  task: number | null;
  container: string | null;
  name: string | null;
  image: string | null;
  state: string;
  health: string | null;
  started_at: string | null;
  uptime_seconds: number | null;
  restarts: number | null;
  exit_code: number | null;
  oom_killed: boolean;
  restart_loop: boolean;
  memory_bytes: number | null;
  cpu_percent: number | null;
  in_spec: boolean;
  stopped_by_drover: boolean;
}

export interface LockInfo {
  job: string;
  host: string;
  by: string;
  at: string;
  reason: string;
  command: string;
  pid: number | null;
}

export interface HostView {
  name: string;
  address: string;
  state: "connecting" | "up" | "resyncing" | "unreachable";
  error: string | null;
  version: string | null;
  api_version: string | null;
  since: string;
  containers: number;
  running: number;
  events: number;
}

export interface JobView {
  name: string;
  image: string;
  hosts: string[];
  instances: number;
  locks: LockInfo[];
}

export interface Overview {
  env: string;
  version: number;
  time: string;
  spec_error: string | null;
  hosts: HostView[];
  jobs: JobView[];
  tasks: TaskStatus[];
}

export type LinkState = "connecting" | "live" | "reconnecting" | "signed-out";

type Listener = (o: Overview) => void;
type StateListener = (s: LinkState, why?: string) => void;

export class Live {
  private listeners: Listener[] = [];
  private stateListeners: StateListener[] = [];
  last: Overview | null = null;
  /** Server clock minus ours, in ms: uptimes tick from the server's time. */
  skew = 0;
  private backoff = 500;

  constructor() {
    this.connect();
  }

  on(fn: Listener): void {
    this.listeners.push(fn);
    if (this.last) fn(this.last);
  }

  onState(fn: StateListener): void {
    this.stateListeners.push(fn);
  }

  private setState(s: LinkState, why?: string) {
    for (const fn of this.stateListeners) fn(s, why);
  }

  private connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/api/live`);
    this.setState(this.last ? "reconnecting" : "connecting");
    ws.onopen = () => {
      this.backoff = 500;
      this.setState("live");
    };
    ws.onmessage = (e) => {
      try {
        const o = JSON.parse(e.data as string) as Overview;
        if (!o.hosts) return;
        this.skew = Date.parse(o.time) - Date.now();
        this.last = o;
        for (const fn of this.listeners) fn(o);
      } catch {
        // A torn message: the next snapshot replaces it anyway.
      }
    };
    ws.onclose = (e) => {
      if (e.code === 4001) {
        this.setState("signed-out", e.reason);
        return;
      }
      this.setState("reconnecting", e.reason || undefined);
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    };
  }
}

let shared: Live | null = null;
export function live(): Live {
  if (!shared) shared = new Live();
  return shared;
}
