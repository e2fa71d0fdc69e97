/** KVM's errors (the errno of a failed ioctl, with a kind and a message): a leaf every KVM file may import. */
export class KvmError extends Error {
  constructor(
    readonly kind: "hardware" | "memslot" | "vcpu" | "argument" | "state",
    message: string,
  ) {
    super(message);
    this.name = "KvmError";
  }
}
