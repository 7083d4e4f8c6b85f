#!/usr/bin/env node
// Builds a Glassbox component from a JavaScript app: bundles the app and what
// it imports (this SDK included) into one module with rolldown, then turns it
// into a component against the WIT this package carries, with one of two
// JavaScript engines:
//
// - quickjs (componentize-qjs, the default): small components (about 2 MB)
//   that start fast; 64-bit integers are Numbers.
// - starlingmonkey (componentize-js): about 12 MB and slower to start, with
//   the web APIs of a browser worker (fetch over granted outgoing HTTP among them).
//
// An app that imports `wasi:otel` (through `glassbox-sdk/otel`) is built
// against its world with the `wasi:otel` imports added.
//
//   glassbox-componentize app.js --world tool-plugin|agent -o app.wasm [--engine quickjs|starlingmonkey]

import { rolldown } from 'rolldown';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ENGINES = {
  quickjs: async ({ code, wit, world }) => {
    const { componentize } = await import('componentize-qjs');
    // `sync`: the host runs guests without the component model's async ABI.
    const { component } = await componentize({ jsSource: code, witPath: wit, world, sync: true });
    return component;
  },
  starlingmonkey: async ({ code, wit, world }) => {
    const { componentize } = await import('@bytecodealliance/componentize-js');
    // componentize-js reads the module from a file.
    const work = await mkdtemp(join(tmpdir(), 'glassbox-componentize-'));
    try {
      const sourcePath = join(work, 'app.js');
      await writeFile(sourcePath, code);
      const { component } = await componentize({
        sourcePath,
        witPath: wit,
        worldName: world,
        // No incoming HTTP or stdio for a guest; clocks, randomness and (granted) outgoing HTTP stay.
        disableFeatures: ['stdio', 'fetch-event'],
      });
      return component;
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  },
};

const usage =
  'usage: glassbox-componentize APP.js --world tool-plugin|agent -o OUT.wasm [--engine quickjs|starlingmonkey]';
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    world: { type: 'string', short: 'w' },
    out: { type: 'string', short: 'o' },
    engine: { type: 'string', default: 'quickjs' },
  },
});
if (
  positionals.length !== 1 ||
  !['tool-plugin', 'agent'].includes(values.world) ||
  !values.out ||
  !Object.hasOwn(ENGINES, values.engine)
) {
  console.error(usage);
  process.exit(2);
}

// A published package carries the WIT; a checkout has it two folders up.
const here = dirname(fileURLToPath(import.meta.url));
const wit = [join(here, '../wit'), join(here, '../../../wit')].find((path) => existsSync(path));

/** A copy of `wit` whose worlds also import `wasi:otel`, in `work`; returns
 * the world to build against. */
async function withOtel(work, world) {
  const otelWit = join(work, 'wit');
  await cp(wit, otelWit, { recursive: true, filter: (path) => !path.startsWith(join(wit, 'wasi-otel')) });
  await cp(join(wit, 'wasi-otel'), join(otelWit, 'deps/wasi-otel'), {
    recursive: true,
    filter: (path) => !path.startsWith(join(wit, 'wasi-otel/deps')),
  });
  for (const dep of await readdir(join(wit, 'wasi-otel/deps'))) {
    await cp(join(wit, 'wasi-otel/deps', dep), join(otelWit, 'deps', dep), { recursive: true });
  }
  await writeFile(
    join(otelWit, 'with-otel.wit'),
    `package glassbox:agent@0.1.0;\n\nworld ${world}-with-otel {\n    include ${world};\n    include wasi:otel/imports@0.2.0-rc.2;\n}\n`,
  );
  return { wit: otelWit, world: `${world}-with-otel` };
}

const work = await mkdtemp(join(tmpdir(), 'glassbox-wit-'));
try {
  const bundle = await rolldown({
    input: resolve(positionals[0]),
    external: [/^glassbox:/, /^wasi:/],
    resolve: {
      // The app builds against the SDK that builds it, wherever it is installed.
      alias: {
        'glassbox-sdk/tool': join(here, '../src/tool.js'),
        'glassbox-sdk/agent': join(here, '../src/agent.js'),
        'glassbox-sdk/otel': join(here, '../src/otel.js'),
        'glassbox-sdk': join(here, '../src/index.js'),
      },
      // The OpenTelemetry API the app imports is the SDK's own copy, so the
      // providers `glassbox-sdk/otel` installs are the ones the app sees.
      modules: ['node_modules', join(here, '../node_modules')],
      // Packages (this SDK's `#int64` among them) may have code for one engine.
      conditionNames: [values.engine, 'import', 'module', 'default'],
      // For packages without `exports` (`@opentelemetry/api-logs` among them).
      mainFields: ['module', 'main'],
    },
    platform: 'neutral',
    logLevel: 'warn',
    // An import left unresolved would fail later, inside the engine, with
    // only its name: fail here, saying where it is imported.
    onLog(level, log, handler) {
      handler(log.code === 'UNRESOLVED_IMPORT' ? 'error' : level, log);
    },
  });
  const { output } = await bundle.generate({ format: 'esm' });
  const target = output[0].imports.some((module) => module.startsWith('wasi:otel/'))
    ? await withOtel(work, values.world)
    : { wit, world: values.world };
  const component = await ENGINES[values.engine]({ code: output[0].code, ...target });
  await writeFile(values.out, component);
} catch (error) {
  console.error(`glassbox-componentize: ${error.message ?? error}`);
  process.exitCode = 1;
} finally {
  await rm(work, { recursive: true, force: true });
}
