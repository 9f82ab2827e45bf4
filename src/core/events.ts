/** A component's note that something went wrong without stopping it; every component's events may carry one. */
export type WarningEvent = { event: 'warning', message: string }
