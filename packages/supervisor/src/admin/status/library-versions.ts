/**
 * Which version of each native library is in service: its sha256 and since
 * when, for the status page. Hashed when the supervisor starts serving a
 * library (start, a config reload that adds it) and again after every
 * successful hot reload of its file — never at /status time, so the hash is
 * the one the workers loaded, not whatever sits on disk now.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { EventEmitter } from 'node:events';
import type { SupervisorEvents } from '../../events.js';

export interface LibraryVersion {
  sha256: string | null;
  bytes: number | null;
  /** ISO time this version went into service. */
  loadedAt: string;
  /** Why the hash is missing (the file could not be read). */
  error?: string;
}

export class LibraryVersions {
  private readonly versions = new Map<string, LibraryVersion>();

  constructor(events: EventEmitter<SupervisorEvents>, initial: string[]) {
    for (const file of initial) this.track(file);
    events.on('reloaded', (e) => {
      for (const file of e.libraries) if (!this.versions.has(file)) this.track(file);
    });
    events.on('library-reloaded', (e) => {
      if (e.ok) this.track(e.file);
    });
  }

  get(file: string): LibraryVersion | undefined {
    return this.versions.get(file);
  }

  private track(file: string): void {
    const v: LibraryVersion = { sha256: null, bytes: null, loadedAt: new Date().toISOString() };
    this.versions.set(file, v);
    readFile(file).then(
      (buf) => {
        v.sha256 = createHash('sha256').update(buf).digest('hex');
        v.bytes = buf.length;
      },
      (err: Error) => {
        v.error = err.message;
      },
    );
  }
}
