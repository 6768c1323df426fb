// gRPC C++'s greeter server as its examples write it (sync API, default options): what a plain gRPC
// service costs, for bench-grpc.py to compare iommud with.
//
// Usage: greeter-server ADDRESS:PORT
#include <iostream>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "helloworld.grpc.pb.h"

class GreeterServiceImpl final : public helloworld::Greeter::Service {
        grpc::Status SayHello(grpc::ServerContext *context, const helloworld::HelloRequest *request,
                              helloworld::HelloReply *reply) override {
                reply->set_message("Hello " + request->name());
                return grpc::Status::OK;
        }
};

int main(int argc, char **argv) {
        if (argc != 2) {
                std::cerr << "usage: greeter-server ADDRESS:PORT\n";
                return 2;
        }
        GreeterServiceImpl service;
        grpc::ServerBuilder builder;
        builder.AddListeningPort(argv[1], grpc::InsecureServerCredentials());
        builder.RegisterService(&service);
        std::unique_ptr<grpc::Server> server(builder.BuildAndStart());
        if (!server)
                return 1;
        std::cout << "listening on " << argv[1] << std::endl;
        server->Wait();
        return 0;
}
