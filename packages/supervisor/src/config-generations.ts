/**
 * The configs the workers may still be running, by generation. Call markers
 * record the generation modulo 65536 with each call in progress; a worker can
 * die inside a call it started before a SIGHUP switched configs, so a few
 * past generations are kept to map its route index back to a route.
 */
import type { Config } from '@flexilib/contract';

const KEEP = 8;

export class ConfigGenerations {
  private readonly byGen = new Map<number, Config>();
  current: Config;
  generation = 0;

  constructor(config: Config) {
    this.current = config;
    this.byGen.set(0, config);
  }

  /** Make `config` current as the next generation; returns the generation. */
  advance(config: Config): number {
    this.generation++;
    this.current = config;
    this.byGen.set(this.generation, config);
    for (const g of this.byGen.keys()) if (g <= this.generation - KEEP) this.byGen.delete(g);
    return this.generation;
  }

  /** The config of a generation recorded modulo 65536, if still known. */
  get(generation16: number): Config | undefined {
    for (let g = this.generation; g > this.generation - KEEP && g >= 0; g--) {
      if ((g & 0xffff) === generation16) return this.byGen.get(g);
    }
    return undefined;
  }
}
