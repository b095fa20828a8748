// Rollout webhooks, as Flagger calls them: a POST with the rollout's name and phase; any 2xx answer is a yes,
// anything else (another status, a timeout, no answer) is a no.
import type { Webhook, WebhookKind } from "../components/config/rollout-config";

export interface WebhookPayload {
    readonly stack: string;
    readonly services: readonly string[];
    readonly phase: WebhookKind;
    /** The step's percent, when the hook is called at a step. */
    readonly percent?: number;
}

export interface WebhookAnswer {
    readonly ok: boolean;
    readonly detail: string;
}

export async function callWebhook(hook: Webhook, payload: WebhookPayload): Promise<WebhookAnswer> {
    try {
        const response = await fetch(hook.url, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(payload),
            signal: AbortSignal.timeout(hook.timeoutMs),
        });
        const text = (await response.text()).slice(0, 200).trim();
        return { ok: response.ok, detail: `${payload.phase} webhook answered ${response.status}${text === "" ? "" : `: ${text}`}` };
    } catch (error) {
        return { ok: false, detail: `${payload.phase} webhook ${hook.url} did not answer: ${error instanceof Error ? error.message : String(error)}` };
    }
}
