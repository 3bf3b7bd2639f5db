import { chatParts } from "../../room/chat";

/**
 * Chat text with http(s) links made clickable; everything else stays text. Each link is
 * isolated left-to-right (`<bdi dir="ltr">`: surrounding right-to-left text cannot reorder
 * it) and ends at any bidi control, and the controls that reorder whole runs are shown as
 * placeholders in the text around it (src/room/chat.ts): a link reads as the address it
 * opens, and no words can pose as one.
 */
export function LinkedText({ text }: { text: string }) {
  return (
    <>
      {chatParts(text).map((part, i) =>
        part.kind === "link" ? (
          <bdi key={i} dir="ltr" className="chat-link">
            <a href={part.href} title={part.href} target="_blank" rel="noopener noreferrer nofollow">
              {part.text}
            </a>
          </bdi>
        ) : (
          part.text
        ),
      )}
    </>
  );
}
