/**
 * Port-I/O devices and the bus they attach to.
 */
export { type ByteSink, DeviceError, type PioDevice, type PortRange } from "./device.ts";
export { PioBus } from "./pio_bus.ts";
export { DebugCon, type DebugConOptions } from "./debugcon.ts";
export { PostCodePort, type PostCodePortOptions } from "./post.ts";
export { Uart16550, type Uart16550Options } from "./uart16550.ts";
export { I8259, I8259Pair } from "./i8259.ts";
export { I8254, type I8254Options, PIT_HZ, PitChannel, pitTicksAt, pitTickTime } from "./i8254.ts";
