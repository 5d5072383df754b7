/**
 * @file taskkit/queue.h
 * @brief Placeholder: this module's declarations land with its issue.
 */
#ifndef TASKKIT_QUEUE_H
#define TASKKIT_QUEUE_H
#include "export.h"
#endif
