// An agent written in JavaScript with the SDK, for the host's tests of
// JavaScript agents. Its input is a command: `agents` (list the agents it may
// call), `invoke AGENT TEXT` (report another agent's answer or how it failed),
// `embed TEXT...` (say what vectors came back), `explode` (throw an error no
// code catches).

import { GlassboxError, embed } from 'glassbox-sdk';
import { agent, invokeAgent, listAgents } from 'glassbox-sdk/agent';

function invoke(argument) {
  const [name, ...task] = argument.split(' ');
  try {
    return `answered: ${invokeAgent(name, task.join(' '))}`;
  } catch (error) {
    if (!(error instanceof GlassboxError)) throw error;
    return `${error.name}: ${error.message}`;
  }
}

export const entrypoint = agent({
  name: 'js-test-agent',
  description: 'Does what its input says.',
  run({ text }) {
    const [command, ...rest] = text.trim().split(' ');
    const argument = rest.join(' ');
    switch (command) {
      case 'agents':
        return listAgents()
          .map((card) => `${card.name}: ${card.description}`)
          .join(', ');
      case 'invoke':
        return invoke(argument);
      case 'embed': {
        const vectors = embed(argument.split(' '));
        return `${vectors.length} vectors of ${vectors[0].length} dimensions, first ${JSON.stringify(vectors[0])}`;
      }
      case 'explode':
        throw new RangeError('told to explode');
      default:
        throw new Error(`unknown command \`${command}\``);
    }
  },
});
