// The page's one WebSocket (`/api/live`): every live thing a tab shows
// travels on it, so twenty tabs stream where twenty event streams would
// stall behind the browser's six connections per origin. Subscriptions are
// made again after a reconnect (logs resume after their last cursor); a
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
  failing: string | null;
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

export interface StopMark {
  job: string;
  host: string;
  by: string | null;
  at: string | null;
}

export interface Glance {
  changes: number | null;
  held: number;
  stop_marks: StopMark[];
  locks: LockInfo[];
  unreachable: string[];
  error: string | null;
  last_deploy: string | null;
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
  in_spec: boolean;
  locks: LockInfo[];
  glance: Glance;
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

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Message = { id: number; t: string; [k: string]: any };
type Handler = (m: Message) => void;

interface Sub {
  request: Record<string, unknown>;
  handler: Handler;
}

export class Channel {
  private ws: WebSocket | null = null;
  private subs = new Map<number, Sub>();
  private next = 1;
  private backoff = 500;
  private stateListeners: ((s: LinkState, why?: string) => void)[] = [];
  private ended = false;
  state: LinkState = "connecting";
  role = document.body.dataset.role ?? "viewer";
  /** Server clock minus ours, in ms: uptimes tick from the server's time. */
  skew = 0;

  constructor() {
    this.connect();
  }

  onState(fn: (s: LinkState, why?: string) => void): void {
    this.stateListeners.push(fn);
    fn(this.state);
  }

  private setState(s: LinkState, why?: string) {
    this.state = s;
    for (const fn of this.stateListeners) fn(s, why);
  }

  /** Subscribes; `request` is the topic and its fields. Returns a handle. */
  subscribe(request: Record<string, unknown>, handler: Handler): { id: number; update: (r: Record<string, unknown>) => void; close: () => void } {
    const id = this.next++;
    const sub = { request, handler };
    this.subs.set(id, sub);
    this.send({ op: "sub", id, ...request });
    return {
      id,
      // What to ask for when subscribing again (a log's new cursor).
      update: (r) => {
        sub.request = { ...sub.request, ...r };
      },
      close: () => {
        this.subs.delete(id);
        this.send({ op: "unsub", id });
      },
    };
  }

  private send(o: object) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(o));
  }

  private connect() {
    if (this.ended) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/api/live`);
    this.ws = ws;
    this.setState(this.state === "connecting" ? "connecting" : "reconnecting");
    ws.onopen = () => {
      this.backoff = 500;
      for (const [id, sub] of this.subs) ws.send(JSON.stringify({ op: "sub", id, ...sub.request }));
    };
    ws.onmessage = (e) => {
      let m: Message;
      try {
        m = JSON.parse(e.data as string) as Message;
      } catch {
        return;
      }
      if (m.t === "hello") {
        this.role = m.role;
        this.setState("live");
        return;
      }
      if (m.t === "overview" && m.data && m.data.time) this.skew = Date.parse(m.data.time) - Date.now();
      this.subs.get(m.id)?.handler(m);
    };
    ws.onclose = (e) => {
      this.ws = null;
      if (e.code === 4001) {
        this.ended = true;
        this.setState("signed-out", e.reason);
        return;
      }
      this.setState("reconnecting", e.reason || undefined);
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    };
  }
}

let shared: Channel | null = null;
export function channel(): Channel {
  if (!shared) shared = new Channel();
  return shared;
}

let overviewSub: { last: Overview | null; listeners: ((o: Overview) => void)[] } | null = null;
/** The overview, shared by whatever on the page wants it. */
export function onOverview(fn: (o: Overview) => void): void {
  if (!overviewSub) {
    const s = { last: null as Overview | null, listeners: [] as ((o: Overview) => void)[] };
    overviewSub = s;
    channel().subscribe({ topic: "overview" }, (m) => {
      if (m.t !== "overview" || !m.data || !m.data.hosts) return;
      s.last = m.data as Overview;
      for (const l of s.listeners) l(s.last);
    });
  }
  overviewSub.listeners.push(fn);
  if (overviewSub.last) fn(overviewSub.last);
}
