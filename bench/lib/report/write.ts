/** Write the results: JSON and SVG under bench/results/, and docs/performance.md. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Results } from '../summary.ts';
import { chartSvg } from './chart-svg.ts';
import { renderDoc } from './doc.ts';

export const TEMPLATE = path.resolve(import.meta.dirname, '../../performance.template.md');

export interface Outputs {
  json: string;
  svg: string;
  doc?: string;
}

export function writeOutputs(r: Results, outDir: string, docFile: string | undefined, template = TEMPLATE): Outputs {
  mkdirSync(outDir, { recursive: true });
  const json = path.join(outDir, 'latest.json');
  const svg = path.join(outDir, 'latest.svg');
  writeFileSync(json, JSON.stringify(r, null, 2) + '\n');
  writeFileSync(svg, chartSvg(r));
  if (docFile) {
    mkdirSync(path.dirname(docFile), { recursive: true });
    writeFileSync(docFile, renderDoc(readFileSync(template, 'utf8'), r));
  }
  return { json, svg, doc: docFile };
}
