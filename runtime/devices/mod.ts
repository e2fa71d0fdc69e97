/**
 * Port-I/O devices and the bus they attach to.
 */
export { type ByteSink, DeviceError, type PioDevice, type PortRange } from "./device.ts";
export { PioBus } from "./pio_bus.ts";
export { DebugCon, type DebugConOptions } from "./debugcon.ts";
export { PostCodePort, type PostCodePortOptions } from "./post.ts";
export { Uart16550, type Uart16550Options } from "./uart16550.ts";
