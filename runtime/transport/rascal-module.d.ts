// Rascal ships no types; amqp-transport.ts narrows it to the few calls warren makes.
declare module 'rascal' {
  const rascal: unknown;
  export default rascal;
}
