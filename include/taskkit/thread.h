/**
 * @file taskkit/thread.h
 * @brief Placeholder: this module's declarations land with its issue.
 */
#ifndef TASKKIT_THREAD_H
#define TASKKIT_THREAD_H
#include "export.h"
#endif
