import { readFileSync } from 'node:fs';
import { GEN_AI_PROVIDER_NAME_VALUE_OPENAI } from '@opentelemetry/semantic-conventions/incubating';
import type { GenAiProvider } from '../../telemetry/catalog.ts';
import type { AgentDefinition } from '../definitions.ts';
import { redactText, secretForms } from '../secrets.ts';
import { ModelError, type ChatMessage, type ModelProvider, type ModelRequest, type ModelSession, type ModelTurn, type ToolCallRequest } from './model.ts';

export interface OpenAiCompatibleOptions {
  /** Used when an agent's model names no base_url: e.g. http://localhost:11434/v1 for Ollama. */
  readonly defaultBaseUrl?: string;
  /** Sent to defaultBaseUrl's origin only (see modelEndpoint). */
  readonly defaultApiKey?: string;
  /** Where `model.api_key_env` is looked up; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
}

/** Whether two URLs share an origin (scheme, host, port): where a credential for one may go to the other. */
export function sameOrigin(a: string, b: string | undefined): boolean {
  if (b === undefined || !URL.canParse(a) || !URL.canParse(b)) return false;
  return new URL(a).origin === new URL(b).origin;
}

/**
 * Where an agent's calls go and the key they carry. The agent's own key when it names one
 * (`model.api_key_env`, `model.api_key_file`); else the default key, but only to the default URL's origin,
 * so that an agent pointed elsewhere (a local Ollama, someone's proxy) never receives it; else none. A key
 * named but missing is a model_config error, not a call without a key.
 */
export function modelEndpoint(agent: AgentDefinition, options: OpenAiCompatibleOptions): { baseUrl: string; apiKey: string | undefined } {
  const baseUrl = agent.model.base_url ?? options.defaultBaseUrl;
  if (!baseUrl) throw new ModelError(`agent "${agent.id}": model.base_url is not set and SWITCHYARD_MODEL_BASE_URL is empty`, 'model_config');
  const { api_key_env: variable, api_key_file: file } = agent.model;
  if (variable !== undefined) {
    const key = (options.env ?? process.env)[variable];
    if (!key) throw new ModelError(`agent "${agent.id}": model.api_key_env names ${variable}, which is not set`, 'model_config');
    return { baseUrl, apiKey: key };
  }
  if (file !== undefined) {
    let key: string;
    try {
      key = readFileSync(file, 'utf8').trim();
    } catch (error) {
      throw new ModelError(`agent "${agent.id}": model.api_key_file ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`, 'model_config');
    }
    if (!key) throw new ModelError(`agent "${agent.id}": model.api_key_file ${file} is empty`, 'model_config');
    return { baseUrl, apiKey: key };
  }
  const toDefault = agent.model.base_url === undefined || sameOrigin(agent.model.base_url, options.defaultBaseUrl);
  return { baseUrl, apiKey: toDefault ? options.defaultApiKey : undefined };
}

/** How long one call may take, retries included, unless the agent's `model.timeout_ms` says otherwise. */
export const DEFAULT_MODEL_CALL_TIMEOUT_MS = 30_000;
/** How often a call answered 429 is retried, unless the agent's `model.max_retries` says otherwise. */
export const DEFAULT_MODEL_MAX_RETRIES = 2;
/** A 429 without Retry-After waits this long before its retry. */
const DEFAULT_RETRY_AFTER_MS = 1_000;
/** What of a server's error answer goes into the error message (and so the span's status). */
const ERROR_BODY_CHARS = 500;

/**
 * Chat completions over HTTP: OpenAI, Ollama, vLLM and anything else that speaks the same protocol.
 * Non-streaming: the agent loop needs the whole answer (its tool calls, its usage) before it can act, so
 * the request asks for none (`stream` is not sent); a server that streams anyway is a protocol error.
 *
 * Every failure is a ModelError whose code is the call's error.type (span and
 * gen_ai.client.operation.duration alike), never an exception from the HTTP client or the JSON parser:
 *   model_unreachable   no connection (refused, DNS, reset before an answer)
 *   model_http_<status> the server answered an error status (401, 404, 500, 503, ...); 429 after its retries
 *   model_protocol      the answer is not a chat completion: not JSON, no choices[0].message, tool calls
 *                       without a function name or with arguments that are not JSON, a stream
 *   timeout             no complete answer within the call's timeout (`model.timeout_ms`, default 30 s),
 *                       retries and their waits included
 * Rate limits (429) are retried at most `model.max_retries` times (default 2), each after the server's
 * Retry-After (seconds or an HTTP date; 1 s when absent); a Retry-After that would outlast the call's
 * timeout fails the call at once with model_http_429, saying how long the server asked to wait. Other
 * statuses are not retried: the run fails, and the caller (or a workflow author) decides.
 */
export class OpenAiCompatibleProvider implements ModelProvider {
  readonly name = 'openai-compatible';
  /**
   * `openai` whatever server answers (Ollama, vLLM, ...): the conventions set gen_ai.provider.name by the
   * client's best knowledge, and this client speaks OpenAI's API; gen_ai.response.model tells the rest.
   */
  readonly genAiProviderName: GenAiProvider = GEN_AI_PROVIDER_NAME_VALUE_OPENAI;
  readonly #options: OpenAiCompatibleOptions;

  constructor(options: OpenAiCompatibleOptions = {}) {
    this.#options = options;
  }

  open(agent: AgentDefinition): ModelSession {
    const { baseUrl, apiKey } = modelEndpoint(agent, this.#options);
    // A server's error text may quote what it was sent (OpenAI's 401 quotes the key): no configured key,
    // in any of its forms, leaves in an error message (and so the stored error, the span, the logs).
    const keys = secretForms([apiKey, this.#options.defaultApiKey].filter((key) => key !== undefined));
    const url = `${baseUrl.replace(/\/+$/, '')}/chat/completions`;
    const timeoutMs = agent.model.timeout_ms ?? DEFAULT_MODEL_CALL_TIMEOUT_MS;
    const maxRetries = agent.model.max_retries ?? DEFAULT_MODEL_MAX_RETRIES;
    const headers = { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) };
    /** The start of a server's text for an error message: redacted before it is cut, so no part of a key is left at the cut. */
    const excerpt: Excerpt = (text, chars) => redactText(text, keys).slice(0, chars);

    return {
      async next(request: ModelRequest): Promise<ModelTurn> {
        try {
          return await call(request);
        } catch (error) {
          if (error instanceof ModelError) throw new ModelError(redactText(error.message, keys), error.code);
          throw error;
        }
      },
    };

    async function call(request: ModelRequest): Promise<ModelTurn> {
      const body = JSON.stringify({
        model: agent.model.name,
        temperature: agent.model.temperature,
        messages: request.messages.map(toWire),
        tools: request.tools.length === 0 ? undefined : request.tools.map((tool) => ({
          type: 'function',
          function: { name: tool.id, description: tool.description, parameters: tool.inputSchema ?? { type: 'object' } },
        })),
      });
      const deadline = Date.now() + timeoutMs;
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = AbortSignal.any([request.signal, timeout]);
      /** The run was stopped (its reason propagates); else our own timeout, else `failure`. */
      const fail = (failure: () => ModelError): never => {
        if (request.signal.aborted) throw request.signal.reason;
        if (timeout.aborted) throw new ModelError(`model at ${url} gave no complete answer within ${timeoutMs} ms (model.timeout_ms)`, 'timeout');
        throw failure();
      };
      for (let retries = 0; ; retries++) {
        let response: Response;
        let text: string;
        try {
          response = await fetch(url, { method: 'POST', headers, body, signal });
          text = await response.text();
        } catch (error) {
          return fail(() => new ModelError(`model request to ${url} failed: ${causeOf(error)}`, 'model_unreachable'));
        }
        if (response.status === 429) {
          const waitMs = retryAfterMs(response.headers.get('retry-after'));
          if (retries < maxRetries && Date.now() + waitMs < deadline) {
            await sleep(waitMs, signal).catch(() => fail(() => new ModelError('model call aborted', 'model_unreachable')));
            continue;
          }
          const why = retries >= maxRetries ? `after ${retries} retries (model.max_retries)` : `and asked to wait ${waitMs} ms, beyond the call's timeout of ${timeoutMs} ms`;
          throw new ModelError(`model answered HTTP 429 (rate limited) ${why}: ${excerpt(text, ERROR_BODY_CHARS)}`, 'model_http_429');
        }
        if (!response.ok) throw new ModelError(`model answered HTTP ${response.status}: ${excerpt(text, ERROR_BODY_CHARS)}`, `model_http_${response.status}`);
        return { ...parseCompletion(text, excerpt), ...(retries > 0 && { retries }) };
      }
    }
  }
}

interface CompletionResponse {
  id?: unknown;
  model?: unknown;
  choices?: unknown;
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null;
}

type Excerpt = (text: string, chars: number) => string;

/** A chat completion's answer, or a model_protocol ModelError that says what is wrong with it (quoting `excerpt`s of the text). */
function parseCompletion(text: string, excerpt: Excerpt): ModelTurn {
  const protocol = (what: string) => new ModelError(`model answer is not a chat completion: ${what}`, 'model_protocol');
  let payload: CompletionResponse;
  try {
    payload = JSON.parse(text) as CompletionResponse;
  } catch {
    throw protocol(`not JSON${text.startsWith('data:') ? ' (a stream: this client does not ask for one)' : ''}: ${excerpt(text, 200)}`);
  }
  const choices = payload !== null && typeof payload === 'object' && Array.isArray(payload.choices) ? payload.choices as unknown[] : undefined;
  const message = (choices?.[0] as { message?: unknown } | undefined)?.message as { content?: unknown; tool_calls?: unknown } | undefined;
  if (!message || typeof message !== 'object') throw protocol('no choices[0].message');
  const usage = tokens(payload.usage?.prompt_tokens) !== undefined && tokens(payload.usage?.completion_tokens) !== undefined
    ? { inputTokens: tokens(payload.usage!.prompt_tokens)!, outputTokens: tokens(payload.usage!.completion_tokens)! }
    : undefined;
  const answer = {
    ...(usage && { usage }),
    ...(typeof payload.model === 'string' && { responseModel: payload.model }),
    ...(typeof payload.id === 'string' && { responseId: payload.id }),
    finishReasons: choices!.flatMap((choice) => {
      const reason = (choice as { finish_reason?: unknown } | null)?.finish_reason;
      return typeof reason === 'string' ? [reason] : [];
    }),
  };
  if (Array.isArray(message.tool_calls) && message.tool_calls.length > 0) {
    return { ...answer, toolCalls: message.tool_calls.map((call, i) => toolCall(call, i, protocol, excerpt)) };
  }
  if (message.content !== undefined && message.content !== null && typeof message.content !== 'string') throw protocol('choices[0].message.content is not a string');
  return { ...answer, toolCalls: [], final: parseContent(message.content ?? '') };
}

function toolCall(call: unknown, index: number, protocol: (what: string) => ModelError, excerpt: Excerpt): ToolCallRequest {
  const { id, function: fn } = (call ?? {}) as { id?: unknown; function?: { name?: unknown; arguments?: unknown } };
  if (typeof fn?.name !== 'string' || fn.name === '') throw protocol(`tool_calls[${index}] has no function.name`);
  const text = typeof fn.arguments === 'string' ? fn.arguments : '{}';
  let args: unknown;
  try {
    args = JSON.parse(text);
  } catch {
    throw protocol(`tool_calls[${index}] (${fn.name}) has arguments that are not JSON: ${excerpt(text, 200)}`);
  }
  return { id: typeof id === 'string' ? id : `call_${index}`, name: fn.name, arguments: args };
}

/** A token count the server reported: a non-negative integer, else unknown (no usage rather than a wrong one). */
function tokens(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date (RFC 9110); 1 s when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number {
  if (header === null || header.trim() === '') return DEFAULT_RETRY_AFTER_MS;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? DEFAULT_RETRY_AFTER_MS : Math.max(0, date - now);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** fetch says "fetch failed"; the reason (ECONNREFUSED, a reset) is its cause. */
function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return detail ? `${message} (${detail})` : message;
}

function toWire(message: ChatMessage) {
  if (message.role === 'tool') return { role: 'tool', tool_call_id: message.toolCallId, content: message.content };
  if (message.toolCalls?.length) {
    return {
      role: 'assistant',
      content: message.content || null,
      tool_calls: message.toolCalls.map((call) => ({
        id: call.id, type: 'function', function: { name: call.name, arguments: JSON.stringify(call.arguments ?? {}) },
      })),
    };
  }
  return { role: message.role, content: message.content };
}

/** A model may answer JSON (structured output) or prose; keep structure when there is some. */
function parseContent(content: string): unknown {
  const trimmed = content.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return JSON.parse(trimmed);
    } catch {
      // Not JSON after all: the prose is the answer.
    }
  }
  return content;
}
