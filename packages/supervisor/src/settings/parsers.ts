/** The parsers settings use: each names the flag or variable in its error (exit 2). */
import { statSync } from 'node:fs';
import path from 'node:path';
import { parseSize } from '@flexilib/contract';
import { usage, type Parser } from './setting.js';

export function int(min: number, max: number): Parser<number> {
  return (text, name) => {
    const n = Number(text);
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw usage(`${name}: "${text}" is not an integer from ${min} to ${max}`);
    }
    return n;
  };
}

/** An integer count of KiB, as bytes. */
export function kib(min: number, max: number): Parser<number> {
  const kb = int(min, max);
  return (text, name) => kb(text, name) * 1024;
}

/** 1048576, 512k, 4m: as bytes. */
export const size: Parser<number> = (text, name) => {
  const n = parseSize(text);
  if (n === undefined) throw usage(`${name}: "${text}" is not a size such as 1048576, 512k or 4m`);
  return n;
};

export const text: Parser<string> = (t) => t;

/** Free text kept with the flag or variable it came from, for a rule between settings that names it (the cluster companions). */
export interface Named {
  name: string;
  text: string;
}
export const named: Parser<Named> = (t, name) => ({ name, text: t });

/** One of `choices`; `described` words them in the error (e.g. "json or text"). */
export function oneOf<C extends string>(choices: readonly C[], described = `one of ${choices.join(', ')}`): Parser<C> {
  return (t, name) => {
    if (!(choices as readonly string[]).includes(t)) throw usage(`${name}: "${t}" is not ${described}`);
    return t as C;
  };
}

/** 0, 1, true or false (the variable behind a --no-... flag). */
export const onOff: Parser<boolean> = (t, name) => oneOf(['0', '1', 'true', 'false'])(t, name) === '1' || t === 'true';

/** An existing folder, as an absolute path. */
export const folder: Parser<string> = (t, name) => {
  const dir = path.resolve(t);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    /* reported below */
  }
  if (!isDir) throw usage(`${name}: "${t}" is not a folder`);
  return dir;
};
