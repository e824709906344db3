package iam_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/resilienthttp/resilienthttp/examples/sdk/iam"
	"github.com/resilienthttp/resilienthttp/servicetest"
)

// What a caller of the SDK writes: its own errors, no status codes, no
// bodies.
func ExampleClient_GetUser() {
	srv := servicetest.New() // a fake IAM service on 127.0.0.1
	defer srv.Close()
	srv.Script("GET /v3/users/u1", servicetest.Step{Body: `{"id":"u1","name":"ann","enabled":true}`})
	srv.Script("GET /v3/users/u9", servicetest.Step{Status: 404, Code: "IAM.0003", Message: "The user does not exist."})

	c, err := iam.New(srv.URL, iam.WithToken("token"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	u, err := c.GetUser(context.Background(), "u1")
	fmt.Println(u.Name, err)

	_, err = c.GetUser(context.Background(), "u9")
	var e *iam.Error
	if errors.Is(err, iam.ErrUserNotFound) && errors.As(err, &e) {
		fmt.Println("no such user:", e.Code, e.Message)
	}
	// Output:
	// ann <nil>
	// no such user: IAM.0003 The user does not exist.
}
