/** `{{field}}` templates over a record's fields: how a dataset's columns become the text a model sees. */
import { DatasetError } from './errors.ts';

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;

/** The template with each `{{name}}` replaced by the record's field `name`. */
export function renderRecordTemplate(template: string, record: Record<string, unknown>, where: string): string {
  return template.replace(PLACEHOLDER, (_, name: string) => recordText(record, name, where));
}

/** A field as text: strings as they are, numbers printed (CSV and Parquet answers are often numbers). */
export function recordText(record: Record<string, unknown>, name: string, where: string): string {
  const value = record[name];
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  const fields = Object.keys(record).join(', ') || 'none';
  const got = value === undefined ? 'it is missing' : `got ${value === null ? 'null' : typeof value}`;
  throw new DatasetError(`${where}: field "${name}" must be text, ${got} (fields: ${fields})`);
}
