


""*2x2cpu2nanoseconds2main2span_id2abc