// What a JSON file can hold of a TypeScript type: string enums become the union of their
// values (a JSON file says "value", never BigValueColorMode.Value).
export type Json<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? Array<Json<U>>
      : T extends object
        ? { [K in keyof T]: Json<T[K]> }
        : T;
