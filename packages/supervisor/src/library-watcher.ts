/**
 * Watches the configured library files — one @parcel/watcher subscription per
 * folder that holds one, in the supervisor only (workers watch nothing) — and
 * reports each file once it has been quiet for the debounce time, so a file
 * written in several steps (`cp` in place, a slow writer, a linker) is
 * reported once, after its last write.
 *
 *   write  write  write ........ (debounceMs quiet) ──> onChange(file)
 *
 * Folders are watched rather than files because replacing a file by rename
 * (the safe way: `mv new.so lib.so`) gives it a new inode, which a watch on the
 * file itself would lose. A library reached through a symlink is watched at
 * both ends: a change of the link or of its target reloads it. Subfolders are
 * ignored.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import watcher, { type AsyncSubscription, type Event } from '@parcel/watcher';
import type { Logger } from 'pino';

/**
 * inotify on Linux, named: left to choose, @parcel/watcher first probes for
 * watchman through popen("watchman ...") and, when watchman is missing, never
 * reaps that `sh` (a zombie child of the supervisor for its whole life).
 */
const BACKEND: { backend?: 'inotify' } = process.platform === 'linux' ? { backend: 'inotify' } : {};

export class LibraryWatcher {
  /** folder -> subscription */
  private readonly subs = new Map<string, AsyncSubscription>();
  /** watched path (configured or its real path) -> configured file */
  private paths = new Map<string, string>();
  private files: string[] = [];
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Subscription changes run one after another. */
  private chain: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly debounceMs: number, private readonly onChange: (file: string) => void, private readonly log: Logger) {}

  /** Watch exactly these library files (absolute paths) from now on. */
  watch(files: string[]): Promise<void> {
    this.files = [...new Set(files)];
    this.chain = this.chain.then(() => this.sync());
    return this.chain;
  }

  /** The folders currently subscribed. */
  folders(): string[] {
    return [...this.subs.keys()];
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await this.chain;
    await Promise.all([...this.subs.values()].map((s) => s.unsubscribe().catch(() => {})));
    this.subs.clear();
  }

  private async sync(): Promise<void> {
    if (this.closed) return;
    const paths = new Map<string, string>();
    for (const file of this.files) {
      paths.set(file, file);
      try {
        const real = realpathSync(file);
        if (real !== file) paths.set(real, file);
      } catch {
        /* missing for now: its folder is still watched */
      }
    }
    this.paths = paths;
    const wanted = new Set([...paths.keys()].map((p) => path.dirname(p)));
    for (const [folder, sub] of this.subs) {
      if (wanted.has(folder)) continue;
      this.subs.delete(folder);
      await sub.unsubscribe().catch(() => {});
    }
    for (const folder of wanted) {
      if (this.subs.has(folder)) continue;
      try {
        const sub = await watcher.subscribe(folder, (err, events) => this.onEvents(folder, err, events), { ignore: ['*/**'], ...BACKEND });
        this.subs.set(folder, sub);
        this.log.debug({ folder }, 'watching library folder');
      } catch (err) {
        this.log.warn({ code: 'FLX_WATCH_FAILED', folder, err: (err as Error).message }, `cannot watch library folder ${folder}; changes to its libraries need a SIGHUP`);
      }
    }
  }

  private onEvents(folder: string, err: Error | null, events: Event[]): void {
    if (err) {
      this.log.warn({ code: 'FLX_WATCH_FAILED', folder, err: err.message }, 'library watcher error');
      return;
    }
    for (const e of events) {
      const file = this.paths.get(e.path);
      if (file) this.bump(file);
    }
  }

  private bump(file: string): void {
    if (this.closed) return;
    const old = this.timers.get(file);
    if (old) clearTimeout(old);
    this.timers.set(
      file,
      setTimeout(() => {
        this.timers.delete(file);
        // A symlink may now point elsewhere: follow it before reporting.
        void this.watch(this.files);
        this.onChange(file);
      }, this.debounceMs),
    );
  }
}
