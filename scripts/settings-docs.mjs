#!/usr/bin/env node
// Rewrites docs/operations.md's tables of flags and environment variables from
// the settings table (packages/supervisor/src/settings/table.ts). Run after
// `pnpm build` whenever a setting is added or changed; a test fails until then.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { withSettingsTable } from '../packages/supervisor/dist/settings/docs-table.js';

const file = path.resolve(import.meta.dirname, '../docs/operations.md');
const before = readFileSync(file, 'utf8');
const after = withSettingsTable(before);
if (after !== before) writeFileSync(file, after);
console.log(after === before ? `${file} is up to date` : `${file} rewritten`);
