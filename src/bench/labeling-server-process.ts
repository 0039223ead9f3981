/**
 * The loopback labeling server in a process of its own (see `startRemoteLabelingServer`): a real teacher
 * answers from another machine, so its JSON work must not share the measured client's thread. Messages:
 * it sends {url} once listening; on {take: true} it answers {counts}; on {close: true} it exits.
 */
import { startLabelingServer, type LabelingServerOptions } from './labeling.ts';

const options = JSON.parse(process.argv[2]) as LabelingServerOptions;
const server = await startLabelingServer(options);
process.on('message', async (message: { take?: boolean; close?: boolean }) => {
  if (message.take) process.send!({ counts: server.takeCounts() });
  if (message.close) {
    await server.close();
    process.exit(0);
  }
});
process.send!({ url: server.url });
