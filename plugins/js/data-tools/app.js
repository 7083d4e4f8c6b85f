// Data tools, in JavaScript: `csv_summary` reads a CSV table and summarises
// each column (numbers: count, min, max, mean; text: count and distinct
// values), and `convert_units` converts lengths, masses and temperatures.

import { ToolFailed, span } from 'glassbox-sdk';
import { tool as defineTool, toolPlugin } from 'glassbox-sdk/tool';

const MAX_ROWS = 10_000;

function parseCsv(text) {
  const rows = text.trim().split(/\r?\n/).map((line) => line.split(',').map((cell) => cell.trim()));
  if (rows.length < 2) throw new ToolFailed('the CSV needs a header row and at least one data row');
  if (rows.length > MAX_ROWS + 1) throw new ToolFailed(`the CSV has more than ${MAX_ROWS} rows`);
  return { header: rows[0], data: rows.slice(1) };
}

function summarise(values) {
  const numbers = values.filter((v) => v !== '').map(Number);
  if (numbers.length && numbers.every(Number.isFinite)) {
    const sum = numbers.reduce((a, b) => a + b, 0);
    return {
      type: 'number',
      count: numbers.length,
      min: Math.min(...numbers),
      max: Math.max(...numbers),
      mean: Math.round((sum / numbers.length) * 1000) / 1000,
    };
  }
  return { type: 'text', count: values.length, distinct: new Set(values).size };
}

const csvSummary = defineTool({
  name: 'csv_summary',
  description: 'Summarises each column of a CSV table (first row is the header): numbers get count, min, max and mean; text gets count and distinct values.',
  parameters: {
    type: 'object',
    properties: { csv: { type: 'string', description: 'The table, comma-separated, header first.' } },
    required: ['csv'],
    additionalProperties: false,
  },
  run({ csv }) {
    const { header, data } = parseCsv(csv);
    return span('csv_summary.columns', { 'csv.rows': data.length, 'csv.columns': header.length }, () =>
      Object.fromEntries(header.map((name, column) => [name, summarise(data.map((row) => row[column] ?? ''))])),
    );
  },
});

// Each unit in its dimension's base unit (metres, kilograms); temperatures convert apart.
const UNITS = {
  length: { m: 1, km: 1000, cm: 0.01, mm: 0.001, mi: 1609.344, yd: 0.9144, ft: 0.3048, in: 0.0254 },
  mass: { kg: 1, g: 0.001, lb: 0.45359237, oz: 0.028349523125, t: 1000 },
};
const TO_KELVIN = { C: (v) => v + 273.15, F: (v) => ((v - 32) * 5) / 9 + 273.15, K: (v) => v };
const FROM_KELVIN = { C: (v) => v - 273.15, F: (v) => ((v - 273.15) * 9) / 5 + 32, K: (v) => v };

const convertUnits = defineTool({
  name: 'convert_units',
  description: 'Converts a value between units of length (m, km, cm, mm, mi, yd, ft, in), mass (kg, g, lb, oz, t) or temperature (C, F, K).',
  parameters: {
    type: 'object',
    properties: { value: { type: 'number' }, from: { type: 'string' }, to: { type: 'string' } },
    required: ['value', 'from', 'to'],
    additionalProperties: false,
  },
  run({ value, from, to }) {
    let converted;
    if (from in TO_KELVIN && to in FROM_KELVIN) {
      converted = FROM_KELVIN[to](TO_KELVIN[from](value));
    } else {
      const dimension = Object.values(UNITS).find((units) => from in units && to in units);
      if (!dimension) throw new ToolFailed(`cannot convert ${from} to ${to}`);
      converted = (value * dimension[from]) / dimension[to];
    }
    return { value: Math.round(converted * 1e6) / 1e6, unit: to };
  },
});

export const tool = toolPlugin(csvSummary, convertUnits);
