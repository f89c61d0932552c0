import { httpPipeline } from './http-pipeline.ts';

/** The HTTP test pipeline as a module for `warren run`, listening on `WARREN_HTTP_PORT`. */
export default httpPipeline({ port: Number(process.env.WARREN_HTTP_PORT ?? 0) }).pipeline;
