import { useEffect, useRef, type ReactNode } from "react";
import { Link } from "../components/Link";
import { TopBar } from "../components/TopBar";
import "../styles/access.css";

interface ErrorPageProps {
  testId: string;
  code: string;
  title: string;
  children: ReactNode;
}

/** An error page: the heading takes focus (a screen reader hears what happened), a way home. */
function ErrorPage({ testId, code, title, children }: ErrorPageProps) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · Salon`;
    heading.current?.focus();
    return () => {
      document.title = "Salon";
    };
  }, [title]);
  return (
    <div className="page">
      <TopBar />
      <main className="container error-page" data-testid={testId}>
        <p className="error-code mb-2">{code}</p>
        <h1 className="h2 mb-3" tabIndex={-1} ref={heading}>
          {title}
        </h1>
        {children}
        <Link to="/" className="btn btn-primary mt-2" testId={`${testId}-home`}>
          Go to the home page
        </Link>
      </main>
    </div>
  );
}

/** Any path the app does not know (the server answers it with status 404). */
export function NotFound() {
  return (
    <ErrorPage testId="not-found" code="Error 404" title="Page not found">
      <p className="text-body-secondary">
        There is no page at this address. Check the link, or start from the home page.
      </p>
    </ErrorPage>
  );
}

/** `/r/<id>` where the id cannot be a meeting's (bad characters, too long, a broken link). */
export function NotAMeeting() {
  return (
    <ErrorPage testId="not-a-meeting" code="Broken link" title="This link is not a meeting">
      <p className="text-body-secondary">
        Meeting links look like <span className="text-body">…/r/x7Gq2LmP9aBc</span>: letters, digits,
        &lsquo;-&rsquo; and &lsquo;_&rsquo; only, up to 64 of them. Part of this one may be missing or
        changed. Ask the person who sent it for the link again.
      </p>
    </ErrorPage>
  );
}
