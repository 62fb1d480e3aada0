import { type FormEvent, useEffect, useState } from "react";
import { storedToken, storeToken, UNAUTHENTICATED_EVENT } from "../api.js";

/**
 * Asks for an API token when the hub refuses a call for want of one (a hub
 * with auth configured; docs/security-auth.md). The token stays in this
 * tab's sessionStorage and goes with every call as a bearer token.
 */
export function TokenPrompt() {
  const [refusal, setRefusal] = useState<string | undefined>();
  const [token, setToken] = useState("");
  useEffect(() => {
    const onRefused = (event: Event) => setRefusal((event as CustomEvent<string>).detail || "");
    window.addEventListener(UNAUTHENTICATED_EVENT, onRefused);
    return () => window.removeEventListener(UNAUTHENTICATED_EVENT, onRefused);
  }, []);
  if (refusal === undefined) return null;
  const submit = (event: FormEvent) => {
    event.preventDefault();
    storeToken(token.trim());
    window.location.reload();
  };
  return (
    <form className="token-prompt" onSubmit={submit} aria-label="API token">
      <p>
        {storedToken() ? "The hub refused this token" : "This hub needs an API token"}
        {refusal ? `: ${refusal}` : ""}
      </p>
      <input
        type="password"
        autoComplete="off"
        placeholder="token or JWT"
        value={token}
        onChange={(event) => setToken(event.target.value)}
      />
      <button type="submit" disabled={!token.trim()}>
        Use token
      </button>
    </form>
  );
}
