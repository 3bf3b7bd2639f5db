/**
 * The mark beside a member signed in to an account: its name is that account's display name,
 * which no guest can take (docs/PROTOCOL.md §5.2, `MemberInfo.signed_in`). A guest who chose
 * the same name before the account existed shows without it.
 */
export function SignedInMark({ testId }: { testId: string }) {
  return (
    <span className="signed-in-mark" data-testid={testId} title="Signed in to this account">
      <span aria-hidden="true">✓</span>
      <span className="visually-hidden">(signed in)</span>
    </span>
  );
}
