// Rollout webhooks, as Flagger calls them: a POST with the rollout's name and phase; a 2xx answer from the URL
// itself is a yes, anything else (another status, a redirect, a timeout, no answer) is a no. Redirects are not
// followed: a gate that redirects to a login page answering 200 has not said yes.
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
            redirect: "manual",
        });
        const text = (await response.text()).slice(0, 200).trim();
        const location = response.headers.get("location");
        if (response.status >= 300 && response.status < 400) {
            return { ok: false, detail: `${payload.phase} webhook answered ${response.status}, a redirect${location === null ? "" : ` to ${location}`}; a webhook says yes with a 2xx from its own URL, and redirects are not followed` };
        }
        return { ok: response.ok, detail: `${payload.phase} webhook answered ${response.status}${text === "" ? "" : `: ${text}`}` };
    } catch (error) {
        return { ok: false, detail: `${payload.phase} webhook ${hook.url} did not answer: ${error instanceof Error ? error.message : String(error)}` };
    }
}
