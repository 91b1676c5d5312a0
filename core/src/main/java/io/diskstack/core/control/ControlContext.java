package io.diskstack.core.control;

import io.diskstack.core.ExportGuard;
import io.diskstack.core.config.Stack;

/**
 * What a {@link ControlTreeProvider} gets: the mounted stack (graph, objects, config) and what
 * only the front end knows ({@link ExportGuard}: who has an export open).
 */
public record ControlContext(Stack stack, ExportGuard guard) {}
