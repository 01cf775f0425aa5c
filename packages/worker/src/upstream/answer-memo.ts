/**
 * An origin's last answer head as the client gets it (hop-by-hop headers out,
 * its Content-Length read), reused while the next answer repeats it. An
 * origin sends the same headers answer after answer, its Date aside (a new
 * one each second); node's parser hands them over as fresh strings, so
 * comparing them costs a compare of a few bytes each, a fraction of filtering
 * and scanning them again. The reused array, with the very strings of last
 * time, also makes the lane's head memo (answer-head.ts) compare by identity.
 */
import { contentLengthOf, sameStrings } from '../http/raw-headers.js';
import { relayedHeaders } from './headers.js';

export class AnswerMemo {
  private raw: readonly string[] = [];
  private out: string[] = [];
  /** The Content-Length among what headers() last returned (-1: none). */
  length = -1;

  /** relayedHeaders(raw), from memory when raw repeats the last head. The array is shared: never change it. */
  headers(raw: string[]): string[] {
    if (raw === this.raw || sameStrings(raw, this.raw)) return this.out;
    // raw is the parser's own array, kept unchanged for the next comparison.
    this.raw = raw;
    this.out = relayedHeaders(raw);
    this.length = contentLengthOf(this.out);
    return this.out;
  }
}
