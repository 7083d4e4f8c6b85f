#!/usr/bin/env node
// Builds a Glassbox component from a JavaScript app: bundles the app and what
// it imports (this SDK included) into one module with rolldown, then runs
// componentize-js on it against the WIT this package carries, with the WASI
// features the host does not offer a guest turned off.
//
//   glassbox-componentize app.js --world tool-plugin|agent -o app.wasm

import { componentize } from '@bytecodealliance/componentize-js';
import { rolldown } from 'rolldown';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const usage = 'usage: glassbox-componentize APP.js --world tool-plugin|agent -o OUT.wasm';
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { world: { type: 'string', short: 'w' }, out: { type: 'string', short: 'o' } },
});
if (positionals.length !== 1 || !['tool-plugin', 'agent'].includes(values.world) || !values.out) {
  console.error(usage);
  process.exit(2);
}

// A published package carries the WIT; a checkout has it two folders up.
const here = dirname(fileURLToPath(import.meta.url));
const wit = [join(here, '../wit'), join(here, '../../../wit')].find((path) => existsSync(path));

const work = await mkdtemp(join(tmpdir(), 'glassbox-componentize-'));
try {
  const bundled = join(work, 'app.js');
  const bundle = await rolldown({
    input: resolve(positionals[0]),
    external: [/^glassbox:/, /^wasi:/],
    // The app builds against the SDK that builds it, wherever it is installed.
    resolve: {
      alias: {
        'glassbox-sdk/tool': join(here, '../src/tool.js'),
        'glassbox-sdk/agent': join(here, '../src/agent.js'),
        'glassbox-sdk': join(here, '../src/index.js'),
      },
    },
    platform: 'neutral',
    logLevel: 'warn',
  });
  await bundle.write({ file: bundled, format: 'esm' });
  const { component } = await componentize({
    sourcePath: bundled,
    witPath: wit,
    worldName: values.world,
    // No incoming HTTP or stdio for a guest; clocks, randomness and (granted) outgoing HTTP stay.
    disableFeatures: ['stdio', 'fetch-event'],
  });
  await writeFile(values.out, component);
} catch (error) {
  console.error(`glassbox-componentize: ${error.message ?? error}`);
  process.exitCode = 1;
} finally {
  await rm(work, { recursive: true, force: true });
}
