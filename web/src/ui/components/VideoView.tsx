import { useEffect, useRef } from "react";

interface Props {
  stream: MediaStream | null;
  /** Own view: mirrored and silent. */
  self?: boolean;
  /** Speaker (audio output device) id, where the browser allows choosing one. */
  sinkId?: string;
  className?: string;
  label: string;
  kind?: "camera" | "screen";
}

type SinkCapable = HTMLVideoElement & { setSinkId?: (id: string) => Promise<void> };

/** A <video> bound to a MediaStream. */
export function VideoView({ stream, self = false, sinkId, className = "", label, kind = "camera" }: Props) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const video = ref.current;
    if (video !== null && video.srcObject !== stream) video.srcObject = stream;
  }, [stream]);
  useEffect(() => {
    const video = ref.current as SinkCapable | null;
    if (video?.setSinkId && sinkId) void video.setSinkId(sinkId).catch(() => {});
  }, [sinkId]);
  return (
    <video
      ref={ref}
      className={`video ${self && kind === "camera" ? "mirror" : ""} ${className}`}
      data-kind={kind}
      aria-label={label}
      autoPlay
      playsInline
      muted={self}
    />
  );
}
