/** A small typed event emitter: `on` returns the function that unsubscribes. */
export class Emitter<Events extends object> {
  private readonly handlers = new Map<keyof Events, Set<(event: never) => void>>();

  on<K extends keyof Events>(kind: K, handler: (event: Events[K]) => void): () => void {
    let set = this.handlers.get(kind);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(kind, set);
    }
    set.add(handler as (event: never) => void);
    return () => {
      set.delete(handler as (event: never) => void);
    };
  }

  emit<K extends keyof Events>(kind: K, event: Events[K]): void {
    const set = this.handlers.get(kind);
    if (set === undefined) return;
    for (const handler of [...set]) (handler as (event: Events[K]) => void)(event);
  }
}
