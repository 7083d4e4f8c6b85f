// {{name}}: a Glassbox tool plugin. `count_words` counts the words of a text.

import { tool as defineTool, toolPlugin } from 'glassbox-sdk/tool';

const countWords = defineTool({
  name: 'count_words',
  description: 'Counts the words of a text.',
  parameters: {
    type: 'object',
    properties: { text: { type: 'string', description: 'The text to count' } },
    required: ['text'],
    additionalProperties: false,
  },
  run: ({ text }) => text.split(/\s+/).filter(Boolean).length,
});

export const tool = toolPlugin(countWords);
