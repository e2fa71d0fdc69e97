;; mov ecx, 1000; l: add eax, ecx; dec ecx; jnz l; hlt
(module
 (type $0 (func (param i32 i32) (result i32)))
 (type $1 (func (param i32 i32 i32) (result i32)))
 (import "e" "mem" (memory $0 1))
 (import "e" "slow" (func $slow (param i32 i32 i32) (result i32)))
 (import "e" "callout" (func $callout (param i32 i32) (result i32)))
 (export "run" (func $run))
 (func $run (param $0 i32) (param $1 i32) (result i32)
  (local $2 i32)
  (local $3 i32)
  (local $4 i32)
  (local $5 i32)
  (local $6 i32)
  (local $7 i32)
  (local $8 i32)
  (local $9 i32)
  (local $10 i32)
  (local $11 i32)
  (local $12 i32)
  (local $13 i32)
  (local $14 i32)
  (local $15 i32)
  (local $16 i32)
  (local $17 i32)
  (local $18 i32)
  (local $19 i32)
  (local $20 i32)
  (local $21 i32)
  (local $22 i32)
  (local $23 i32)
  (local $24 i32)
  (local.set $2
   (i32.load offset=16777216
    (i32.const 0)
   )
  )
  (local.set $3
   (i32.load offset=16777224
    (i32.const 0)
   )
  )
  (local.set $10
   (i32.load offset=16777760
    (i32.const 0)
   )
  )
  (local.set $11
   (i32.load offset=16777764
    (i32.const 0)
   )
  )
  (local.set $12
   (i32.load offset=16777768
    (i32.const 0)
   )
  )
  (local.set $13
   (i32.load offset=16777772
    (i32.const 0)
   )
  )
  (local.set $14
   (i32.load offset=16777776
    (i32.const 0)
   )
  )
  (local.set $15
   (i32.load offset=16777352
    (i32.const 0)
   )
  )
  (block $exit
   (block
    (local.set $16
     (i32.const 0)
    )
    (if
     (i32.or
      (i32.gt_u
       (i32.add
        (local.get $16)
        (i32.const 1)
       )
       (local.get $1)
      )
      (i32.ge_u
       (local.get $16)
       (i32.const 65536)
      )
     )
     (then
      (local.set $17
       (i32.const 1048576)
      )
      (br $exit)
     )
    )
    (local.set $22
     (i32.const 1000)
    )
    (local.set $3
     (local.get $22)
    )
    (local.set $16
     (i32.add
      (local.get $16)
      (i32.const 1)
     )
    )
    (block
     (loop $L1
      (if
       (i32.gt_u
        (i32.add
         (local.get $16)
         (i32.const 3)
        )
        (local.get $1)
       )
       (then
        (local.set $17
         (i32.const 1048581)
        )
        (br $exit)
       )
      )
      (local.set $22
       (local.get $2)
      )
      (local.set $23
       (local.get $3)
      )
      (local.set $24
       (i32.add
        (local.get $22)
        (local.get $23)
       )
      )
      (local.set $10
       (i32.const 8193)
      )
      (local.set $11
       (local.get $24)
      )
      (local.set $12
       (local.get $22)
      )
      (local.set $13
       (local.get $23)
      )
      (local.set $14
       (i32.const 2261)
      )
      (local.set $2
       (local.get $24)
      )
      (local.set $22
       (local.get $3)
      )
      (local.set $23
       (i32.sub
        (local.get $22)
        (i32.const 1)
       )
      )
      (local.set $15
       (i32.or
        (i32.and
         (local.get $15)
         (i32.const -2)
        )
        (i32.lt_u
         (local.get $11)
         (local.get $12)
        )
       )
      )
      (local.set $10
       (i32.const 8195)
      )
      (local.set $11
       (local.get $23)
      )
      (local.set $12
       (local.get $22)
      )
      (local.set $13
       (i32.const 1)
      )
      (local.set $14
       (i32.const 2260)
      )
      (local.set $3
       (local.get $23)
      )
      (local.set $18
       (i32.xor
        (i32.eqz
         (local.get $11)
        )
        (i32.const 1)
       )
      )
      (local.set $16
       (i32.add
        (local.get $16)
        (i32.const 3)
       )
      )
      (if
       (local.get $18)
       (then
        (br $L1)
       )
       (else
        (local.set $17
         (i32.const 1048586)
        )
        (br $exit)
       )
      )
     )
    )
   )
  )
  (i32.store offset=16777216
   (i32.const 0)
   (local.get $2)
  )
  (i32.store offset=16777224
   (i32.const 0)
   (local.get $3)
  )
  (i32.store offset=16777760
   (i32.const 0)
   (local.get $10)
  )
  (i32.store offset=16777764
   (i32.const 0)
   (local.get $11)
  )
  (i32.store offset=16777768
   (i32.const 0)
   (local.get $12)
  )
  (i32.store offset=16777772
   (i32.const 0)
   (local.get $13)
  )
  (i32.store offset=16777776
   (i32.const 0)
   (local.get $14)
  )
  (i32.store offset=16777352
   (i32.const 0)
   (local.get $15)
  )
  (i32.store offset=16777344
   (i32.const 0)
   (local.get $17)
  )
  (return
   (i32.or
    (local.get $16)
    (i32.shl
     (local.get $21)
     (i32.const 21)
    )
   )
  )
 )
)
