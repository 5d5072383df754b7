/**
 * @file taskkit/process.h
 * @brief Placeholder: this module's declarations land with its issue.
 */
#ifndef TASKKIT_PROCESS_H
#define TASKKIT_PROCESS_H
#include "export.h"
#endif
