/**
 * Only 200–599 is a final answer. node:http writes whatever status it is
 * given, 1xx included: a plugin answering 101 behind a front proxy that
 * honours it turns the connection into a tunnel past the proxy's rules, and
 * any 1xx leaves a direct client's answers shifted by one. Every executor
 * checks the status it is about to write here and answers 502 instead.
 */
import { FlexiError } from '@flexilib/contract';

/** Thrown (and turned into a 502 naming the route) for a status outside 200–599. */
export function checkFinalStatus(status: number): void {
  if (status >= 200 && status <= 599 && status === Math.floor(status)) return;
  throw new FlexiError('FLX_PLUGIN_BAD_RESPONSE', `status ${status} is not a final status (200-599)`);
}
