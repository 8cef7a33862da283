// send_notification: pretends to deliver a message on a channel and returns its message id.
// Nothing leaves the machine; the API key is checked for presence only and never echoed.
import { createHash } from 'node:crypto';
import { runTool, ToolFailure } from './lib/tool.ts';

const CHANNELS = ['email', 'slack', 'pager'] as const;

runTool((input, context) => {
  const channel = typeof input.channel === 'string' ? input.channel : 'email';
  if (!(CHANNELS as readonly string[]).includes(channel)) {
    throw new ToolFailure('BAD_CHANNEL', `unknown channel ${JSON.stringify(channel)}; use one of ${CHANNELS.join(', ')}`);
  }
  const to = typeof input.to === 'string' ? input.to : '';
  if (!to) throw new ToolFailure('BAD_INPUT', 'send_notification needs "to"');
  const subject = typeof input.subject === 'string' ? input.subject : '';
  const body = typeof input.body === 'string' ? input.body : '';
  const digest = createHash('sha256').update(`${context.executionId}\n${channel}\n${to}\n${subject}\n${body}`).digest('hex');
  return {
    message_id: `msg_${digest.slice(0, 16)}`,
    channel,
    to,
    sender: process.env.NOTIFY_SENDER ?? 'support@switchyard.example',
    authenticated: typeof input.api_key === 'string' && input.api_key.length > 0,
    queued_at: new Date().toISOString(),
  };
});
