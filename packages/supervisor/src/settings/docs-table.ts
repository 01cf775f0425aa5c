/**
 * docs/operations.md's tables of flags and variables, generated from the
 * settings table between two markers; `node scripts/settings-docs.mjs`
 * rewrites them, and a test fails while they are out of date.
 */
import { GROUPS, type SettingTable } from './setting.js';
import { byGroup } from './help.js';
import { SETTINGS } from './table.js';

export const DOCS_BEGIN = '<!-- settings table: generated from packages/supervisor/src/settings/table.ts by node scripts/settings-docs.mjs -->';
export const DOCS_END = '<!-- end of settings table -->';

const cell = (t: string): string => t.replaceAll('|', '\\|');

/** The markdown tables of every setting, one per group. */
export function settingsDocsTable(table: SettingTable = SETTINGS): string {
  return byGroup(table)
    .map(([g, list]) => {
      const rows = list.map((s) => {
        const flag = s.flag ? `\`--${s.flag}${s.arg ? ` ${s.arg}` : ''}\`${s.short ? ` (\`-${s.short}\`)` : ''}` : '';
        const env = s.env ? `\`${s.env}${s.flag && !s.arg ? '=0' : ''}\`` : '';
        return `| ${flag} | ${env} | ${cell(s.shown)} | ${cell(s.docs ?? s.help.join(' '))} |`;
      });
      return `### ${GROUPS[g]}\n\n| flag | env | default | what |\n| --- | --- | --- | --- |\n${rows.join('\n')}\n`;
    })
    .join('\n');
}

/** `markdown` with the text between the markers replaced by the current tables; throws when a marker is missing. */
export function withSettingsTable(markdown: string, table: SettingTable = SETTINGS): string {
  const begin = markdown.indexOf(DOCS_BEGIN);
  const end = markdown.indexOf(DOCS_END);
  if (begin < 0 || end < begin) throw new Error(`the settings table markers are missing: ${DOCS_BEGIN} ... ${DOCS_END}`);
  return `${markdown.slice(0, begin + DOCS_BEGIN.length)}\n\n${settingsDocsTable(table)}\n${markdown.slice(end)}`;
}
