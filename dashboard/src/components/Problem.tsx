/** What went wrong talking to the hub, shown where the data would be. */
export function Problem({ error }: { error: string | undefined }) {
  return error ? (
    <p className="problem" role="alert">
      {error}
    </p>
  ) : null;
}
